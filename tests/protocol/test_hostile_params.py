"""Params that are well-formed JSON but wrong in shape: each gets -32602 (400), never -32603.

Protobuf's JSON reader lets some of them through unsaid (a string where an object belongs,
an enum number that names no value); these tests pin what the client sees instead.
"""

from __future__ import annotations

import httpx
import pytest

from queueapp.model import new_id


def message(text: str = "hi") -> dict:
    return {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}]}


@pytest.mark.parametrize("status", [99, -1])
def test_list_tasks_with_a_status_number_that_names_no_state_is_invalid_params(live, status):
    error = live.rpc("ListTasks", {"status": status}).json()["error"]
    assert error["code"] == -32602 and "TASK_STATE_COMPLETED" in error["message"]


@pytest.mark.parametrize("status", [99, -1])
def test_v03_tasks_list_with_a_bad_status_number_is_invalid_params(live, status):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/list", "params": {"status": status}}
    error = httpx.post(f"{live.url}/a2a", json=body, timeout=30).json()["error"]
    assert error["code"] == -32602


def test_rest_list_tasks_with_a_bad_status_is_400(live):
    answer = httpx.get(f"{live.url}/tasks", params={"status": "99"}, timeout=30)
    assert answer.status_code == 400


def test_list_tasks_with_a_valid_status_number_still_filters(live):
    result = live.rpc("ListTasks", {"status": 3, "contextId": new_id()}).json()["result"]
    assert result["tasks"] == [] and result["totalSize"] == 0


@pytest.mark.parametrize("configuration", ["x", 5, [], ["returnImmediately"]])
def test_send_message_with_a_configuration_that_is_not_an_object_is_invalid_params(live, configuration):
    before = live.rpc("ListTasks", {}).json()["result"]["totalSize"]
    error = live.rpc("SendMessage", {"message": message(), "configuration": configuration}).json()["error"]
    assert error["code"] == -32602 and "configuration must be a JSON object" in error["message"]
    assert live.rpc("ListTasks", {}).json()["result"]["totalSize"] == before  # nothing was queued


def test_rest_send_with_a_string_configuration_is_400(live):
    answer = httpx.post(f"{live.url}/message:send", json={"message": message(), "configuration": "x"}, headers={"A2A-Version": "1.0"}, timeout=30)
    assert answer.status_code == 400 and "configuration" in answer.text


def test_nested_shapes_are_checked_too(live):
    configuration = {"taskPushNotificationConfig": "http://127.0.0.1:1/hook", "returnImmediately": True}
    error = live.rpc("SendMessage", {"message": message(), "configuration": configuration}).json()["error"]
    assert error["code"] == -32602 and "configuration.taskPushNotificationConfig" in error["message"]
    error = live.rpc("SendMessage", {"message": {**message(), "role": 7}}).json()["error"]
    assert error["code"] == -32602 and "role" in error["message"]


# ---- id lengths (A2A_MAX_ID_LENGTH, 256 by default) -------------------------------------------

LONG = "x" * 257


def keys_holding(live, text: str) -> list[str]:
    return [key for key in live.redis.client().scan_iter("*", count=1000) if text in key]


@pytest.mark.parametrize("field", ["messageId", "contextId", "taskId"])
def test_a_message_with_an_over_long_id_is_refused_and_nothing_is_stored(live, field):
    long_id = new_id() + LONG
    error = live.rpc("SendMessage", {"message": {**message(), field: long_id}}).json()["error"]
    assert error["code"] == -32602 and f"message.{field} is {len(long_id)} characters" in error["message"] and "A2A_MAX_ID_LENGTH" in error["message"]
    assert keys_holding(live, long_id[:36]) == []


def test_an_id_at_the_limit_is_accepted(live):
    context_id = new_id() + "c" * (256 - 36)
    result = live.rpc("SendMessage", {"message": {**message(), "contextId": context_id, "messageId": "m" * 256}}).json()["result"]
    assert result["task"]["contextId"] == context_id


def test_over_long_ids_are_refused_in_every_binding_and_version(live):
    long_id = new_id() + LONG
    v03 = {"kind": "message", "messageId": long_id, "role": "user", "parts": [{"kind": "text", "text": "hi"}]}
    rpc03 = httpx.post(f"{live.url}/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": v03}}, timeout=30)
    assert rpc03.json()["error"]["code"] == -32602
    rest10 = httpx.post(f"{live.url}/message:send", json={"message": {**message(), "contextId": long_id}}, headers={"A2A-Version": "1.0"}, timeout=30)
    assert rest10.status_code == 400 and "A2A_MAX_ID_LENGTH" in rest10.text
    rest03 = httpx.post(f"{live.url}/v1/message:send", json={"message": {"messageId": long_id, "role": "ROLE_USER", "content": [{"text": "hi"}]}}, timeout=30)
    assert rest03.status_code == 400 and "A2A_MAX_ID_LENGTH" in rest03.text
    assert httpx.get(f"{live.url}/tasks/{long_id}", headers={"A2A-Version": "1.0"}, timeout=30).status_code == 400
    assert keys_holding(live, long_id[:36]) == []


def test_an_over_long_push_config_id_is_refused(live):
    task = live.rpc("SendMessage", {"message": message(), "configuration": {"returnImmediately": True}}).json()["result"]["task"]
    params = {"taskId": task["id"], "id": LONG, "url": "http://127.0.0.1:9/hook"}
    error = live.rpc("CreateTaskPushNotificationConfig", params).json()["error"]
    assert error["code"] == -32602 and "A2A_MAX_ID_LENGTH" in error["message"]
    configuration = {"taskPushNotificationConfig": {"id": LONG, "url": "http://127.0.0.1:9/hook"}}
    error = live.rpc("SendMessage", {"message": message(), "configuration": configuration}).json()["error"]
    assert error["code"] == -32602 and "configuration.taskPushNotificationConfig.id" in error["message"]
    assert live.rpc("ListTaskPushNotificationConfigs", {"taskId": task["id"]}).json()["result"]["configs"] == []
