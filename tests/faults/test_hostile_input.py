"""Hostile input at the A2A endpoint: sizes, nesting, encodings and content types.

Each case gets a clear error (the right code and a sentence saying what is wrong) and leaves
nothing in Redis, or is accepted whole. tests/protocol/test_limits.py already covers a
1.0 JSON-RPC body at and just over the cap, a REST 413 body, a chunked body cut off at the
cap, a declared Content-Length refused before the body is sent, and A2A_MAX_PARTS over
JSON-RPC 1.0; this module adds the other bindings and versions, and the rest.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from queueapp.protocol.params import MAX_DATA_DEPTH
from queueapp.store.keys import Keys
from tests.faults.audit import every_task_id
from tests.faults.test_fuzz import audit_everything, nested
from tests.protocol.conftest import Live, start_live
from tests.support import wait_until

pytestmark = pytest.mark.faults

LIMIT = 11 * 1024 * 1024  # room for a 10 MB text part
TEN_MB = 10 * 1000 * 1000
KEYS = Keys("a2a")
JSON_HEADERS = {"A2A-Version": "1.0", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-hostile-") as folder:
        server = start_live(Path(folder), A2A_MAX_BODY_BYTES=str(LIMIT), A2A_BLOCKING_TIMEOUT="5s")
        yield server
        server.serve.stop()
        server.redis.stop()
    assert "Traceback" not in server.serve.output, server.serve.output[-4000:]


@pytest.fixture
def http(live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


def footprint(client: redis.Redis) -> tuple[int, int, int, int]:
    """What a created task leaves behind: records, queue entries, index entries, contexts."""
    records = sum(1 for _ in client.scan_iter("a2a:active:*")) + sum(1 for _ in client.scan_iter("a2a:deadletter:*"))
    return records, client.llen(KEYS.queue), len(every_task_id(client)), client.zcard(KEYS.contexts)


class Nothing:
    """``with Nothing(live): ...`` fails unless the block left Redis without a new task."""

    def __init__(self, live: Live):
        self.client = live.redis.client()

    def __enter__(self) -> Nothing:
        self.before = footprint(self.client)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert footprint(self.client) == self.before, "a refused request left something in Redis"


# ---- request bodies in every binding and version -------------------------------------------


def message_10(parts: list[dict]) -> dict:
    return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": parts}


def message_03(parts: list[dict]) -> dict:
    return {"kind": "message", "messageId": str(uuid.uuid4()), "role": "user", "parts": parts}


SPLICE = "__SPLICE__"


def part_03_rest(part: dict) -> dict:
    """A 1.0 part in the 0.3 HTTP+JSON (protobuf) form."""
    return {"data": {"data": part["data"]}} if "data" in part else part


def send(http: httpx.Client, binding: str, parts: list[dict], splice: str = "") -> httpx.Response:
    """A non-blocking send of ``parts`` (1.0 spelling) through one binding and version.

    ``splice`` replaces the string value ``SPLICE`` in the JSON text: values too deep for
    ``json.dumps`` itself.
    """
    if binding == "jsonrpc-1.0":
        path, headers = "/a2a", JSON_HEADERS
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message_10(parts), "configuration": {"returnImmediately": True}}}
    elif binding == "jsonrpc-0.3":
        path, headers = "/a2a", {"Content-Type": "application/json"}
        body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message_03(parts), "configuration": {"blocking": False}}}
    elif binding == "rest-1.0":
        path, headers = "/message:send", JSON_HEADERS
        body = {"message": message_10(parts), "configuration": {"returnImmediately": True}}
    else:
        path, headers = "/v1/message:send", {"Content-Type": "application/json"}
        request = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "content": [part_03_rest(part) for part in parts]}
        body = {"request": request, "configuration": {"blocking": False}}
    text = json.dumps(body)
    return http.post(path, content=text.replace(json.dumps(SPLICE), splice) if splice else text, headers=headers)


BINDINGS = ["jsonrpc-1.0", "jsonrpc-0.3", "rest-1.0", "rest-0.3"]


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(code, message) of a JSON-RPC error or of a google.rpc.Status body; never an internal error."""
    body = response.json()
    if "jsonrpc" in body:
        assert response.status_code in (200, 413), response.text[:300]
        code, message = body["error"]["code"], body["error"]["message"]
    else:
        assert 400 <= response.status_code < 500, response.text[:300]
        code, message = response.status_code, body["error"]["message"]
    assert code not in (-32603, 500) and message, response.text[:300]
    return code, message


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    result = body.get("result", body)
    task = result.get("task", result)
    return task["id"]


# ---- size -------------------------------------------------------------------------------------


@pytest.mark.parametrize("binding", ["jsonrpc-0.3", "rest-0.3"])
def test_a_body_just_over_the_cap_is_refused_in_0_3_too(live, http, binding):
    with Nothing(live):
        response = send(http, binding, [{"text": "x" * LIMIT}])
    assert response.status_code == 413
    assert f"the limit is {LIMIT} bytes" in response.text and "A2A_MAX_BODY_BYTES" in response.text


def test_a_10_mb_text_part_under_the_cap_is_stored_and_answered_whole(live, http):
    response = send(http, "rest-1.0", [{"text": "y" * TEN_MB}])
    task_id = created_id(response)
    body = {"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": task_id}}
    wait_until(lambda: http.post("/a2a", json=body, headers=JSON_HEADERS).json()["result"]["status"]["state"] == "TASK_STATE_COMPLETED", timeout=60, message="the 10 MB task to complete")
    task = http.post("/a2a", json=body, headers=JSON_HEADERS).json()["result"]
    assert task["history"][0]["parts"][0]["text"] == "y" * TEN_MB
    audit_everything(live.redis.client())


@pytest.mark.parametrize("binding", BINDINGS)
def test_a_10_mb_text_part_over_the_default_cap_leaves_nothing(binding, make_config, tmp_path):
    """With the default cap (1 MiB) the same part is refused before anything is parsed."""
    default_cap = make_config().max_body_bytes
    assert default_cap < TEN_MB
    server = start_live(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client, Nothing(server):
            response = send(client, binding, [{"text": "y" * TEN_MB}])
        assert response.status_code == 413 and f"the limit is {default_cap} bytes" in response.text
    finally:
        server.serve.stop()
        server.redis.stop()


@pytest.mark.parametrize("binding", BINDINGS)
def test_tens_of_thousands_of_parts_are_refused(live, http, binding):
    with Nothing(live):
        response = send(http, binding, [{"text": "p"}] * 50_000)
    code, message = error_of(response)
    assert code in (-32602, 400) and "50000 parts" in message and "A2A_MAX_PARTS" in message


# ---- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH, 40, 500, 10_000])
def test_deeply_nested_data_is_refused_or_readable_everywhere(live, http, binding, depth):
    """Up to the cap the task is kept and every version can read it; beyond, a clear error."""
    deep = '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)  # ``depth`` levels of objects
    if depth > MAX_DATA_DEPTH:
        with Nothing(live):
            code, message = error_of(send(http, binding, [{"data": SPLICE}], splice=deep))
        assert code in (-32700, -32602, 400), message
        assert "deep" in message.lower() or "depth" in message.lower(), message
        return
    task_id = created_id(send(http, binding, [{"data": SPLICE}], splice=deep))
    wait_until(lambda: live.redis.client().exists(KEYS.deadletter(task_id)), timeout=30, message="the task to finish")
    for path, headers in ((f"/tasks/{task_id}", {"A2A-Version": "1.0"}), (f"/v1/tasks/{task_id}", {}), ("/v1/tasks?pageSize=5", {}), ("/tasks?pageSize=5", {"A2A-Version": "1.0"})):
        assert http.get(path, headers=headers).status_code == 200, path
    rpc = {"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"id": task_id}}
    assert "result" in http.post("/a2a", json=rpc).json()


@pytest.mark.parametrize("where", ["params", "message"])
def test_deep_metadata_is_refused_like_deep_data(live, http, where):
    message = message_10([{"text": "hi"}])
    params = {"message": message, "configuration": {"returnImmediately": True}}
    (params if where == "params" else message)["metadata"] = nested(MAX_DATA_DEPTH + 5)
    with Nothing(live):
        code, message_text = error_of(http.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}, headers=JSON_HEADERS))
    assert code == -32602 and "metadata nests" in message_text


def test_deeply_nested_arrays_anywhere_in_the_envelope(live, http):
    for version in ("1.0", None):
        body = '{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x","extra":' + "[" * 10_000 + "]" * 10_000 + "}}"
        with Nothing(live):
            response = http.post("/a2a", content=body, headers={"Content-Type": "application/json", **({"A2A-Version": version} if version else {})})
        code, message = error_of(response)
        assert code == -32700 and "depth limit exceeded" in message


# ---- encodings --------------------------------------------------------------------------------

INVALID_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("bad", INVALID_UTF8, ids=["bom-ish", "overlong", "surrogate", "past-u10ffff"])
def test_invalid_utf8_in_the_body_is_a_parse_error(live, http, binding, bad):
    text_marker = "MARKER"  # a valid body is built, then the bad bytes are spliced in here
    body = {
        "jsonrpc-1.0": {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message_10([{"text": text_marker}])}},
        "jsonrpc-0.3": {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message_03([{"kind": "text", "text": text_marker}])}},
        "rest-1.0": {"message": message_10([{"text": text_marker}])},
        "rest-0.3": {"request": {"messageId": "m", "role": "ROLE_USER", "content": [{"text": text_marker}]}},
    }[binding]
    raw = json.dumps(body).encode().replace(text_marker.encode(), b"ok" + bad)
    path = {"jsonrpc-1.0": "/a2a", "jsonrpc-0.3": "/a2a", "rest-1.0": "/message:send", "rest-0.3": "/v1/message:send"}[binding]
    headers = {"Content-Type": "application/json", **({"A2A-Version": "1.0"} if binding.endswith("1.0") else {})}
    with Nothing(live):
        code, message = error_of(http.post(path, content=raw, headers=headers))
    assert code in (-32700, 400, -32602), message


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\u0041"])
def test_lone_surrogate_escapes_are_a_parse_error(live, http, escape):
    body = '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"' + escape + '"}]}}}'
    with Nothing(live):
        code, message = error_of(http.post("/a2a", content=body, headers=JSON_HEADERS))
    assert code == -32700 and "surrogate" in message


@pytest.mark.parametrize("path", ["/tasks/%ff%fe", "/v1/tasks/%ff", "/tasks/%ed%a0%80:cancel", "/tasks?contextId=%ff", "/tasks?status=%c3%28", "/tasks/x/pushNotificationConfigs/%ff"])
def test_invalid_utf8_in_paths_and_queries_gets_a_status_body(live, http, path):
    method = "POST" if path.endswith(":cancel") else "GET"
    with Nothing(live):
        response = http.request(method, path, headers={"A2A-Version": "1.0"} if not path.startswith("/v1") else {})
    assert response.status_code in (200, 400, 404)
    body = response.json()
    if response.status_code != 200:
        assert body["error"]["code"] == response.status_code and body["error"]["message"]


def test_raw_bytes_in_the_version_header_are_refused(live, http):
    response = http.post("/a2a", content=b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}', headers={"A2A-Version": b"\xff\xfe1.0", "Content-Type": "application/json"})
    code, message = error_of(response)
    assert code == -32009 and "not supported" in message


# ---- content types ----------------------------------------------------------------------------

FORM_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "text/html; charset=utf-8"]


@pytest.mark.parametrize("content_type", FORM_TYPES)
@pytest.mark.parametrize("path", ["/a2a", "/message:send", "/v1/message:send"])
def test_a_json_body_declared_as_another_type_is_refused(live, http, content_type, path):
    """Only JSON is read: a browser form (text/plain, url-encoded, multipart) cannot post a task cross-site."""
    params = {"message": message_10([{"text": "from a form"}]), "configuration": {"returnImmediately": True}}
    if path == "/a2a":
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
    elif path == "/message:send":
        body = params
    else:
        body = {"request": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "content": [{"text": "from a form"}]}}
    with Nothing(live):
        response = http.post(path, content=json.dumps(body), headers={"A2A-Version": "1.0" if path != "/v1/message:send" else "0.3", "Content-Type": content_type})
    code, message = error_of(response)
    assert code in (-32005, 415) and "application/json" in message and content_type.split(";")[0] in message


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", None])
def test_form_data_and_no_content_type_with_a_form_body(live, http, content_type):
    form = b"jsonrpc=2.0&method=SendMessage&id=1" if content_type != "multipart/form-data; boundary=xyz" else b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--\r\n'
    headers = {"A2A-Version": "1.0", **({"Content-Type": content_type} if content_type else {})}
    for path in ("/a2a", "/message:send"):
        with Nothing(live):
            code, message = error_of(http.post(path, content=form, headers=headers))
        assert code in (-32005, 415) and "application/json" in message, message


def test_json_with_charset_or_a_json_suffix_is_read(live, http):
    """A charset parameter or a +json type is still JSON."""
    for headers in ({"A2A-Version": "1.0", "Content-Type": "application/json; charset=utf-8"}, {"A2A-Version": "1.0", "Content-Type": "application/a2a+json"}):
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message_10([{"text": "hi"}]), "configuration": {"returnImmediately": True}}}
        assert "result" in http.post("/a2a", content=json.dumps(body), headers=headers).json()
    audit_everything(live.redis.client())
