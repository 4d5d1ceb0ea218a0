"""Raw HTTP for every error path: the right code, an actionable message, the id echoed, never a 500."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from queueapp.model import new_id


def message(text: str = "hello", **extra) -> dict:
    return {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}], **extra}


def post_raw(live, body: bytes | str, version: str | None = "1.0") -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"A2A-Version": version} if version else {})}
    return httpx.post(f"{live.url}/a2a", content=body, headers=headers)


def error_of(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["error"]


def finished_task(live) -> dict:
    return live.rpc("SendMessage", {"message": message("finish me")}).json()["result"]["task"]


# ---- the JSON-RPC envelope ------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", None])
def test_malformed_json_is_parse_error_with_null_id(live, version):
    body = post_raw(live, b'{"jsonrpc": "2.0", "id": 1, "method": ', version).json()
    assert body["id"] is None
    assert body["error"]["code"] == -32700
    assert "not valid JSON" in body["error"]["message"]


def test_invalid_utf8_is_parse_error(live):
    assert error_of(post_raw(live, b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"\xff\xfe"}}'))["code"] == -32700


@pytest.mark.parametrize(
    "body,words",
    [
        ('{"jsonrpc":"1.0","id":1,"method":"GetTask"}', "'jsonrpc' must be exactly"),
        ('{"id":1,"method":"GetTask"}', "'jsonrpc' must be exactly"),
        ('[{"jsonrpc":"2.0","id":1,"method":"GetTask"}]', "Batch requests are not supported"),
        ('"GetTask"', "must be a JSON object"),
        ('{"jsonrpc":"2.0","id":true,"method":"GetTask"}', "'id' must be"),
        ('{"jsonrpc":"2.0","id":1}', "'method' is required"),
        ('{"jsonrpc":"2.0","id":1,"method":"GetTask","params":[1]}', "'params' must be a JSON object"),
    ],
)
def test_invalid_request(live, body, words):
    error = error_of(post_raw(live, body))
    assert error["code"] == -32600
    assert words in error["message"]


@pytest.mark.parametrize("request_id", ["abc-123", 42, None])
def test_request_id_is_echoed_on_success_and_error(live, request_id):
    assert live.rpc("GetTask", {"id": "missing"}, request_id=request_id).json()["id"] == request_id
    assert live.rpc("ListTasks", {"pageSize": 1}, request_id=request_id).json()["id"] == request_id


def test_unknown_methods_say_what_to_use(live):
    assert error_of(live.rpc("tasks/explode"))["code"] == -32601
    wrong_version = error_of(live.rpc("SendMessage", {"message": message()}, version=None))
    assert wrong_version["code"] == -32601 and "A2A-Version: 1.0" in wrong_version["message"]
    old_name = error_of(live.rpc("message/send", {"message": message()}))
    assert old_name["code"] == -32601 and "use SendMessage" in old_name["message"]


@pytest.mark.parametrize("how", ["header", "query"])
def test_unknown_version_is_32009(live, how):
    if how == "header":
        response = live.rpc("GetTask", {"id": "x"}, version="2.5")
    else:
        response = httpx.post(f"{live.url}/a2a?A2A-Version=9.0", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}})
    error = error_of(response)
    assert error["code"] == -32009
    assert error["data"][0]["reason"] == "VERSION_NOT_SUPPORTED"


def test_version_by_query_parameter(live):
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "nope"}}
    error = httpx.post(f"{live.url}/a2a?A2A-Version=1.0", json=body).json()["error"]
    assert error["code"] == -32001 and error["data"][0]["domain"] == "a2a-protocol.org"


def test_get_is_not_a_json_rpc_call(live):
    assert httpx.get(f"{live.url}/a2a", headers={"A2A-Version": "1.0"}).json()["error"]["code"] == -32600


# ---- params ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,params,words",
    [
        ("GetTask", {"id": 5}, "Failed to parse id field"),
        ("GetTask", {}, "'id' is required"),
        ("GetTask", {"id": "x", "historyLength": -1}, "historyLength must be 0 or more"),
        ("SendMessage", {}, "'message' is required"),
        ("SendMessage", {"message": {"role": "ROLE_USER", "parts": [{"text": "x"}]}}, "messageId is required"),
        ("SendMessage", {"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "x"}]}}, "role must be ROLE_USER"),
        ("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}, "at least one part"),
        ("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"mediaType": "text/plain"}]}}, "has no content"),
        ("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a", "url": "http://x"}]}}, "multiple"),
        ("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": "hello"}}, "parts"),
    ],
)
def test_wrong_params_are_32602_with_a_reason(live, method, params, words):
    error = error_of(live.rpc(method, params))
    assert error["code"] == -32602
    assert words in error["message"]


def test_a_push_config_is_checked_after_its_task(live):
    task = live.rpc("SendMessage", {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "hi"}]}}).json()["result"]["task"]
    bad_url = {"url": "ftp://127.0.0.1/hook"}
    error = error_of(live.rpc("CreateTaskPushNotificationConfig", {"taskId": task["id"], **bad_url}))
    assert error["code"] == -32602 and "must use http or https" in error["message"]
    # An unknown task is not found whatever the config: the task is looked up first.
    assert error_of(live.rpc("CreateTaskPushNotificationConfig", {"taskId": new_id(), **bad_url}))["code"] == -32001


def test_v03_params_are_validated_too(live):
    error = error_of(live.rpc("message/send", {"message": {"role": "user", "parts": [{"kind": "text", "text": "x"}]}}, version=None))
    assert error["code"] == -32602 and "message_id" in error["message"].replace("messageId", "message_id")


NOT_BASE64 = ["!!!", "aGVsbG8!!!", "aGVs bG8=", "A", "aGVsbG8=="]


def v03_rest_file(live, file_with_bytes: str) -> httpx.Response:
    message = {"messageId": new_id(), "role": "ROLE_USER", "content": [{"file": {"fileWithBytes": file_with_bytes, "mimeType": "text/plain"}}]}
    return httpx.post(f"{live.url}/v1/message:send", json={"message": message}, headers={"Content-Type": "application/json"})


def file_part_everywhere(live, encoded: str) -> dict[str, httpx.Response]:
    """A message whose one part is a file of ``encoded`` bytes, sent on each binding as that binding spells it."""
    v1 = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"raw": encoded, "mediaType": "text/plain"}]}}
    v03 = {
        "message": {"messageId": new_id(), "role": "user", "kind": "message", "parts": [{"kind": "file", "file": {"bytes": encoded, "mimeType": "text/plain"}}]}
    }
    return {
        "jsonrpc 1.0": live.rpc("SendMessage", v1),
        "jsonrpc 0.3": live.rpc("message/send", v03, version=None),
        "rest 1.0": httpx.post(f"{live.url}/message:send", json=v1, headers={"A2A-Version": "1.0"}),
        # The 0.3 binding carries the base64 text as proto bytes: base64 again in JSON (as the SDK's clients send it).
        "rest 0.3": v03_rest_file(live, base64.b64encode(encoded.encode()).decode()),
        "rest 0.3 outer": v03_rest_file(live, encoded),
    }


@pytest.mark.parametrize("encoded", NOT_BASE64)
def test_file_bytes_that_are_not_base64_are_refused_on_every_binding(live, encoded):
    queued = live.redis.client().llen("a2a:queue")
    for binding, response in file_part_everywhere(live, encoded).items():
        if binding.startswith("jsonrpc"):
            error = error_of(response)
            assert error["code"] == -32602, (binding, error)
            assert "not base64" in error["message"], (binding, error)
        else:
            assert response.status_code == 400, (binding, response.text)
            assert response.json()["error"]["details"][0]["reason"] == "INVALID_PARAMS", (binding, response.text)
    assert live.redis.client().llen("a2a:queue") == queued


def test_v03_rest_file_bytes_that_hold_no_text_are_invalid_params(live):
    response = v03_rest_file(live, "//79")  # bytes ff fe fd: no base64 text, not even UTF-8
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "InvalidParamsError"


def test_file_bytes_in_base64_are_stored_as_sent(live):
    for binding, response in file_part_everywhere(live, "aGVsbG8=").items():
        if binding == "rest 0.3 outer":
            continue  # "hello" is no base64 text
        body = response.json()
        result = body["result"] if binding.startswith("jsonrpc") else body
        task_id = result.get("task", result)["id"]
        stored = live.redis.client().hget(f"a2a:deadletter:{task_id}", "task")
        assert '"raw":"aGVsbG8="' in stored, (binding, stored)  # "hello"


def test_content_type_the_agent_does_not_accept(live):
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"url": "http://example.com/a.png", "mediaType": "image/png"}]}}
    error = error_of(live.rpc("SendMessage", params))
    assert error["code"] == -32005 and "text/plain" in error["message"]


# ---- task errors ----------------------------------------------------------------------------


def test_unknown_task_everywhere_is_32001(live):
    missing = new_id()
    for method, params in [
        ("GetTask", {"id": missing}),
        ("CancelTask", {"id": missing}),
        ("SubscribeToTask", {"id": missing}),
        ("SendMessage", {"message": message(taskId=missing)}),
        ("CreateTaskPushNotificationConfig", {"taskId": missing, "url": "http://127.0.0.1:9/x"}),
        ("ListTaskPushNotificationConfigs", {"taskId": missing}),
    ]:
        error = error_of(live.rpc(method, params))
        assert error["code"] == -32001, method
        assert error["data"][0]["reason"] == "TASK_NOT_FOUND"


def test_finished_task_errors(live):
    task = finished_task(live)
    assert error_of(live.rpc("CancelTask", {"id": task["id"]}))["code"] == -32002
    assert error_of(live.rpc("SubscribeToTask", {"id": task["id"]}))["code"] == -32004
    error = error_of(live.rpc("SendMessage", {"message": message(taskId=task["id"], contextId=task["contextId"])}))
    assert error["code"] == -32004 and "without taskId" in error["message"]


def test_message_to_a_working_task_is_refused(live):
    task = live.rpc("SendMessage", {"message": message("sleep 5"), "configuration": {"returnImmediately": True}}).json()["result"]["task"]
    error = error_of(live.rpc("SendMessage", {"message": message(taskId=task["id"])}))
    assert error["code"] == -32004 and "waits for input" in error["message"]
    live.rpc("CancelTask", {"id": task["id"]})


def test_contradicting_context_id_is_rejected_and_task_untouched(live):
    task = live.rpc("SendMessage", {"message": message("ask Who?")}).json()["result"]["task"]
    error = error_of(live.rpc("SendMessage", {"message": message("Bob", taskId=task["id"], contextId=new_id())}))
    assert error["code"] == -32602 and "contradicts" in error["message"]
    again = live.rpc("GetTask", {"id": task["id"]}).json()["result"]
    assert again["status"]["state"] == "TASK_STATE_INPUT_REQUIRED" and len(again["history"]) == len(task["history"])


def test_extended_card_is_not_configured(live):
    assert error_of(live.rpc("GetExtendedAgentCard"))["code"] == -32007
    assert httpx.get(f"{live.url}/extendedAgentCard", headers={"A2A-Version": "1.0"}).status_code == 400


def test_v03_errors_use_03_codes_and_no_error_info(live):
    body = {"jsonrpc": "2.0", "id": "q", "method": "tasks/get", "params": {"id": "missing"}}
    error = httpx.post(f"{live.url}/a2a", json=body).json()["error"]
    assert error["code"] == -32001 and "data" not in error


def test_bad_requests_leave_nothing_half_written(live):
    redis = live.redis.client()
    before = len(redis.keys("a2a:active:*")) + len(redis.keys("a2a:deadletter:*"))
    queue_before = redis.llen("a2a:queue")
    bad = [
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}] * 101}},
        {"message": message(taskId=new_id())},
        {"message": message(), "configuration": {"taskPushNotificationConfig": {"url": "gopher://x"}}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"raw": "AAAA", "mediaType": "application/zip"}]}},
    ]
    for params in bad:
        assert "error" in live.rpc("SendMessage", params).json()
    time.sleep(0.2)
    assert len(redis.keys("a2a:active:*")) + len(redis.keys("a2a:deadletter:*")) == before
    assert redis.llen("a2a:queue") == queue_before


# ---- HTTP+JSON ------------------------------------------------------------------------------


def test_rest_errors_are_status_bodies(live):
    response = httpx.get(f"{live.url}/tasks/{new_id()}", headers={"A2A-Version": "1.0"})
    assert response.status_code == 404
    status = response.json()["error"]
    assert status["status"] == "NOT_FOUND" and status["details"][0]["reason"] == "TASK_NOT_FOUND"
    finished = finished_task(live)
    response = httpx.post(f"{live.url}/tasks/{finished['id']}:cancel", headers={"A2A-Version": "1.0"})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "TASK_NOT_CANCELABLE"


def test_rest_malformed_body_and_wrong_method(live):
    response = httpx.post(f"{live.url}/message:send", content=b"{oops", headers={"A2A-Version": "1.0", "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "PARSE_ERROR"
    response = httpx.delete(f"{live.url}/tasks/{new_id()}", headers={"A2A-Version": "1.0"})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    response = httpx.get(f"{live.url}/tasks/x", headers={"A2A-Version": "7.1"})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "VERSION_NOT_SUPPORTED"


def test_rest_v03_errors_carry_the_type_name(live):
    response = httpx.get(f"{live.url}/v1/tasks/{new_id()}", headers={"A2A-Version": "0.3"})
    assert response.status_code == 404 and response.json()["type"] == "TaskNotFoundError"
    version = httpx.get(f"{live.url}/v1/tasks/{new_id()}", headers={"A2A-Version": "7.1"})
    assert version.status_code == 400
    assert (version.json()["type"], version.json()["code"]) == ("VersionNotSupportedError", -32600)  # 0.3 has no -32009
    malformed = httpx.post(f"{live.url}/v1/tasks/{new_id()}/pushNotificationConfigs", content=b"{oops", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert (malformed.json()["type"], malformed.json()["code"]) == ("JSONParseError", -32700)


@pytest.mark.parametrize("path", ["/v1/message:send", "/v1/message:stream", "/v1/tasks/t-1/pushNotificationConfigs"])
def test_rest_v03_body_that_is_not_json_is_a_parse_error(live, path):
    response = httpx.post(f"{live.url}{path}", content=b"{bad", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["type"], body["error"]["details"][0]["reason"]) == (-32700, "JSONParseError", "PARSE_ERROR")
    assert "not valid JSON" in body["message"]


@pytest.mark.parametrize("sent", [b"null", b"123", b'"hello"', b"[]", b'{"message": 5}', b'{"message": {"content": [5]}}'])
def test_rest_v03_json_of_the_wrong_shape_is_invalid_params_in_plain_words(live, sent):
    response = httpx.post(f"{live.url}/v1/message:send", content=sent, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["type"]) == (-32602, "InvalidParamsError")
    assert "must be a JSON object" in body["message"]
    assert not any(word in body["message"] for word in ("NoneType", "TypeError", "iterable")), body["message"]


def test_a_request_refused_for_its_headers_still_has_its_id_echoed(live):
    # JSON-RPC 2.0 section 5: the error answers the request's id. Before, a refusal made before
    # the body was read (version, content type) answered with a null id.
    body = b'{"jsonrpc": "2.0", "id": "req-7", "method": "GetTask", "params": {"id": "x"}}'
    version = httpx.post(f"{live.url}/a2a", content=body, headers={"A2A-Version": "2.0", "Content-Type": "application/json"}, timeout=10).json()
    assert version["id"] == "req-7" and version["error"]["code"] == -32009
    form = httpx.post(f"{live.url}/a2a", content=body, headers={"A2A-Version": "1.0", "Content-Type": "text/plain"}, timeout=10).json()
    assert form["id"] == "req-7" and form["error"]["code"] == -32005
    junk = httpx.post(f"{live.url}/a2a", content=b'{"id": true', headers={"A2A-Version": "2.0", "Content-Type": "application/json"}, timeout=10).json()
    assert junk["id"] is None and junk["error"]["code"] == -32009
