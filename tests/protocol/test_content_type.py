"""What a POST must say it carries, and where JSON-RPC clients may post (``/a2a`` and ``/a2a/``)."""

from __future__ import annotations

import json

import httpx
import pytest

from queueapp.model import new_id

SEND = {"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": {"message": {"messageId": "", "role": "ROLE_USER", "parts": [{"text": "hello"}]}}}


def send_body() -> bytes:
    body = json.loads(json.dumps(SEND))
    body["params"]["message"]["messageId"] = new_id()
    return json.dumps(body).encode()


def task_count(live) -> int:
    return live.rpc("ListTasks", {"pageSize": 1}).json()["result"]["totalSize"]


def test_trailing_slash_reaches_the_jsonrpc_endpoint(live):
    """The kit and other clients join paths onto the card's url and post to /a2a/."""
    response = httpx.post(f"{live.url}/a2a/", content=send_body(), headers={"Content-Type": "application/json", "A2A-Version": "1.0"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_jsonrpc_refuses_a_non_json_body_as_content_type_not_supported(live, content_type):
    before = task_count(live)
    response = httpx.post(f"{live.url}/a2a", content=send_body(), headers={"Content-Type": content_type, "A2A-Version": "1.0"})
    error = response.json()["error"]
    assert error["code"] == -32005
    assert content_type.split(";")[0] in error["message"] and "application/json" in error["message"]
    assert error["data"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    assert task_count(live) == before


def test_jsonrpc_refuses_a_body_with_no_content_type(live):
    """What a no-cors fetch with a Blob body sends: the JSON is there, its type is not."""
    before = task_count(live)
    request = httpx.Request("POST", f"{live.url}/a2a", content=send_body(), headers={"A2A-Version": "1.0", "Origin": "http://127.0.0.2:9"})
    response = httpx.Client().send(request)
    assert "content-type" not in {name.lower() for name in request.headers}
    assert response.json()["error"]["code"] == -32005
    assert task_count(live) == before


def test_rest_refuses_text_plain_with_415(live):
    before = task_count(live)
    body = json.dumps({"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "hi"}]}})
    response = httpx.post(f"{live.url}/message:send", content=body, headers={"Content-Type": "text/plain", "A2A-Version": "1.0"})
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == 415 and error["details"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    assert task_count(live) == before


def test_rest_0_3_refuses_a_body_without_content_type_with_its_type_name(live):
    request = httpx.Request("POST", f"{live.url}/v1/message:send", content=b'{"request": {"messageId": "m", "role": "ROLE_USER", "content": [{"text": "x"}]}}')
    assert "content-type" not in {name.lower() for name in request.headers}
    response = httpx.Client().send(request)
    assert response.status_code == 415
    assert response.json()["type"] == "ContentTypeNotSupportedError"


def test_bodyless_post_without_content_type_is_served_unless_a_browser_sent_it(live):
    """The SDK's 0.3 cancel posts no body and no type; a page's no-cors fetch adds an Origin."""
    task = httpx.post(f"{live.url}/message:send", json={"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "sleep 30"}]}, "configuration": {"returnImmediately": True}}, headers={"A2A-Version": "1.0"}).json()["task"]
    from_page = httpx.post(f"{live.url}/tasks/{task['id']}:cancel", headers={"A2A-Version": "1.0", "Origin": "http://127.0.0.2:9"})
    assert from_page.status_code == 415
    assert httpx.get(f"{live.url}/tasks/{task['id']}", headers={"A2A-Version": "1.0"}).json()["status"]["state"] != "TASK_STATE_CANCELED"
    from_program = httpx.post(f"{live.url}/v1/tasks/{task['id']}:cancel", timeout=30)
    assert from_program.status_code == 200, from_program.text
    assert from_program.json()["status"]["state"] == "TASK_STATE_CANCELLED"
