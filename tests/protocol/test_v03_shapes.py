"""0.3 as 0.3 clients send it: the shapes another SDK's 0.3 client sends, byte for byte."""

from __future__ import annotations

import httpx

from queueapp.model import new_id

JSON = {"Content-Type": "application/json"}  # and no A2A-Version: that is 0.3


def finished_task(live) -> dict:
    """A completed task with two messages in its history (the user's and the agent's)."""
    message = {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "hello"}]}
    task = live.rpc("SendMessage", {"message": message}).json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED" and task["history"]
    return task


def test_jsonrpc_tasks_get_with_history_length_0_returns_no_history(live):
    task = finished_task(live)
    body = {"jsonrpc": "2.0", "id": "q1", "method": "tasks/get", "params": {"id": task["id"], "historyLength": 0}}
    result = httpx.post(f"{live.url}/a2a", json=body, headers=JSON).json()["result"]
    assert result["id"] == task["id"] and result["kind"] == "task"
    assert not result.get("history")
    unset = {"jsonrpc": "2.0", "id": "q2", "method": "tasks/get", "params": {"id": task["id"]}}
    assert httpx.post(f"{live.url}/a2a", json=unset, headers=JSON).json()["result"]["history"]  # unset still means all


def create_push_config(live, task_id: str, body: dict) -> dict:
    response = httpx.post(f"{live.url}/v1/tasks/{task_id}/pushNotificationConfigs", json=body, headers=JSON)
    assert response.status_code == 200, response.text
    return response.json()


def test_rest_push_config_create_takes_the_config_object_alone(live):
    """The 0.3 proto maps the body to ``config``: a TaskPushNotificationConfig, nothing around it."""
    task = finished_task(live)
    config = {"name": f"tasks/{task['id']}/pushNotificationConfigs/hook-1", "pushNotificationConfig": {"id": "hook-1", "url": "http://127.0.0.1:9/hook", "token": "secret-1"}}
    created = create_push_config(live, task["id"], config)
    assert created["name"] == f"tasks/{task['id']}/pushNotificationConfigs/hook-1"
    assert created["pushNotificationConfig"]["url"] == "http://127.0.0.1:9/hook"
    listed = httpx.get(f"{live.url}/v1/tasks/{task['id']}/pushNotificationConfigs").json()
    assert [c["pushNotificationConfig"]["token"] for c in listed["configs"]] == ["secret-1"]


def test_rest_push_config_create_still_takes_the_whole_request_and_a_bare_config(live):
    task = finished_task(live)
    whole = {"parent": f"tasks/{task['id']}", "configId": "hook-2", "config": {"pushNotificationConfig": {"url": "http://127.0.0.1:9/whole"}}}
    assert create_push_config(live, task["id"], whole)["pushNotificationConfig"]["url"] == "http://127.0.0.1:9/whole"
    bare = {"url": "http://127.0.0.1:9/bare", "token": "t"}
    assert create_push_config(live, task["id"], bare)["pushNotificationConfig"]["url"] == "http://127.0.0.1:9/bare"


def test_rest_errors_carry_the_jsonrpc_code_0_3_clients_map_to_typed_errors(live):
    missing = httpx.get(f"{live.url}/v1/tasks/{new_id()}")
    assert missing.status_code == 404
    assert (missing.json()["code"], missing.json()["type"]) == (-32001, "TaskNotFoundError")
    task = finished_task(live)
    not_cancelable = httpx.post(f"{live.url}/v1/tasks/{task['id']}:cancel")  # as the 0.3 SDK sends it: no body
    assert (not_cancelable.json()["code"], not_cancelable.json()["type"]) == (-32002, "TaskNotCancelableError")
    follow_up = {"request": {"messageId": new_id(), "taskId": task["id"], "role": "ROLE_USER", "content": [{"text": "more"}]}}
    unsupported = httpx.post(f"{live.url}/v1/message:send", json=follow_up, headers=JSON)
    assert (unsupported.json()["code"], unsupported.json()["type"]) == (-32004, "UnsupportedOperationError")
    assert unsupported.json()["message"] and unsupported.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_a_wrong_method_says_so_not_not_found(live):
    response = httpx.delete(f"{live.url}/v1/tasks/{new_id()}")
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    body = response.json()
    assert body["error"]["status"] != "NOT_FOUND" and body["error"]["details"][0]["reason"] == "METHOD_NOT_ALLOWED"
    assert "DELETE is not allowed" in body["message"] and "GET" in body["message"]
