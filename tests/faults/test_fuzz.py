"""Property-based fuzzing of the A2A endpoint: JSON-RPC and HTTP+JSON, in 1.0 and 0.3.

One live ``serve`` (demo agent, embedded worker, its own redis-server) answers every
generated request through one shared HTTP client with a bounded timeout. Each request must
get a well-formed JSON-RPC answer (result or error) or, on HTTP+JSON, a result or a
google.rpc.Status body: never a 5xx, never an internal error (-32603), never a hang. Each
property ends with an audit of Redis: no half-written task, every queued id has its record,
every record is in its context and its indexes (``tests/faults/audit.py``).

Hand-picked error cases live in tests/protocol/test_errors.py; size limits and encodings in
test_hostile_input.py.
"""

from __future__ import annotations

import json
import string
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from queueapp.protocol import codec, codec03
from queueapp.protocol.errors import ERROR_TABLE
from queueapp.protocol.urls import is_machine_path
from queueapp.store.keys import Keys
from tests.faults.audit import assert_clean, every_task_id
from tests.protocol.conftest import Live, start_live
from tests.support import wait_until

pytestmark = pytest.mark.faults

KEYS = Keys("a2a")
ERROR_CODES = {wire.code for wire in ERROR_TABLE.values()} | {-32600}
INTERNAL = -32603
METHODS_10 = list(codec.PARAM_TYPES)
METHODS_03 = list(codec03.METHODS)

def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- the live server ------------------------------------------------------------------------


class Target:
    """The server under fuzz, its Redis, one HTTP client, and a few real tasks to aim at."""

    def __init__(self, live: Live):
        self.live = live
        self.url = live.url
        self.http = httpx.Client(base_url=live.url, timeout=httpx.Timeout(30.0))
        self.redis: redis.Redis = live.redis.client()
        self.task_ids: list[str] = []
        self.context_ids: list[str] = []

    def seed(self) -> None:
        """A finished task, one waiting for input, and a push config, so ids hit real records."""
        for text in ("hello", "ask Your name?"):
            params = {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}}
            task = self.rpc("SendMessage", params)["result"]["task"]
            self.task_ids.append(task["id"])
            self.context_ids.append(task["contextId"])
        self.rpc("CreateTaskPushNotificationConfig", {"taskId": self.task_ids[0], "id": "cfg", "url": "http://127.0.0.1:9/hook"})

    def never_ends(self, subscribing: bool, *where: str) -> bool:
        """A subscription to the task waiting for input rightly stays open until the task ends:
        it is no bounded request, so the generators leave it out."""
        return subscribing and any(self.task_ids[1] in text for text in where)

    def rpc(self, method: str, params: dict) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return self.http.post("/a2a", json=body, headers={"A2A-Version": "1.0"}).json()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="a2a-fuzz-") as folder:
        live = start_live(Path(folder), A2A_BLOCKING_TIMEOUT="2s", A2A_CANCEL_WAIT="1s", A2A_SSE_KEEPALIVE="1s")
        server = Target(live)
        try:
            server.seed()
            yield server
        finally:
            server.http.close()
            live.serve.stop()
            live.redis.stop()
    assert "Traceback" not in live.serve.output, live.serve.output[-4000:]


# ---- checking answers -----------------------------------------------------------------------


def sse_payloads(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def check_rpc_object(body: Any, sent_id: Any = ...) -> None:
    """One JSON-RPC 2.0 response object: a result or an error the table knows, never -32603."""
    assert isinstance(body, dict) and body.get("jsonrpc") == "2.0", body
    assert ("result" in body) != ("error" in body), body
    if "error" in body:
        error = body["error"]
        assert isinstance(error["code"], int) and error["code"] in ERROR_CODES, body
        assert error["code"] != INTERNAL, body
        assert isinstance(error["message"], str) and error["message"], body
        if error["code"] in (-32700, -32600, -32009, -32005):
            return  # refused before the envelope was read (bad body, version or content type): the id is null
    if sent_id is not ...:
        assert body["id"] == sent_id, body


def check_rpc(response: httpx.Response, sent_id: Any = ...) -> None:
    assert response.status_code in (200, 413), (response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        payloads = sse_payloads(response.text)
        assert payloads, response.text[:500]
        for payload in payloads:
            check_rpc_object(payload, sent_id)
        return
    assert response.headers["content-type"].startswith("application/json"), response.headers
    check_rpc_object(response.json(), sent_id)


def check_status_body(body: Any, status: int) -> None:
    """A google.rpc.Status error body whose code is the HTTP status."""
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert error["code"] == status and isinstance(error["status"], str) and error["message"], body
    assert error["details"][0]["reason"] not in ("INTERNAL_ERROR", "INVALID_AGENT_RESPONSE"), body


def check_rest(response: httpx.Response) -> None:
    status, ctype = response.status_code, response.headers.get("content-type", "")
    assert status < 500, (status, response.text[:500])
    if status == 404 and ctype.startswith("text/html"):
        assert not is_machine_path(response.request.url.path), response.request.url  # only the dashboard's own paths
        return
    if ctype.startswith("text/event-stream"):
        assert status == 200
        for payload in sse_payloads(response.text):
            assert isinstance(payload, dict)
            if "error" in payload and "code" in payload["error"]:
                check_status_body(payload, payload["error"]["code"])
        return
    assert ctype.startswith("application/json"), (status, ctype, response.text[:300])
    body = response.json()
    if status >= 400:
        check_status_body(body, status)
    else:
        assert status == 200 and isinstance(body, dict | list), body


# ---- auditing Redis -------------------------------------------------------------------------


def all_task_ids(client: redis.Redis) -> list[str]:
    """Every task with a record, found by scanning (fine in a test, never on a request path)."""
    ids = [key.split(":", 2)[2] for pattern in ("a2a:active:*", "a2a:deadletter:*") for key in client.scan_iter(pattern, count=1000)]
    return sorted(set(ids))


def audit_everything(client: redis.Redis) -> int:
    """No half-written task anywhere; returns how many tasks exist."""
    wait_until(lambda: not client.llen(KEYS.processing) and not client.zcard(KEYS.leases), timeout=30, message="workers to go quiet")
    ids = all_task_ids(client)
    for task_id in ids:
        fields = client.hgetall(KEYS.active(task_id)) or client.hgetall(KEYS.deadletter(task_id))
        assert fields.get("task") and fields.get("state") and fields.get("context_id"), (task_id, sorted(fields))
        assert json.loads(fields["task"])["status"]["state"].startswith("TASK_STATE_"), task_id
    for queued in client.lrange(KEYS.queue, 0, -1):
        assert client.exists(KEYS.active(queued)), f"queued id {queued} has no record"
    assert len(every_task_id(client)) == len(ids), "the indexes name tasks that have no record"
    assert_clean(client, ids)
    return len(ids)


# ---- strategies -----------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
versions = st.sampled_from(["1.0", None])  # no header means 0.3


def nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth):
        value = {"a": value}
    return value


deep_data = st.integers(1, 120).map(nested)  # around the protobuf and pydantic nesting limits


@st.composite
def task_ids(draw: st.DrawFn, target: Target) -> str:
    return draw(st.sampled_from(target.task_ids) | st.text(max_size=40) | st.just(str(uuid.uuid4())))


def message_10(ids: st.SearchStrategy, contexts: st.SearchStrategy) -> st.SearchStrategy:
    part = st.sampled_from([{"text": "hello"}, {"data": {"n": 1}}, {"url": "https://example.com/a.txt", "mediaType": "text/plain"}, {"raw": "aGk=", "mediaType": "text/plain"}]) | deep_data.map(lambda d: {"data": d})
    return st.fixed_dictionaries(
        {"messageId": st.uuids().map(str), "role": st.just("ROLE_USER"), "parts": st.lists(part, min_size=1, max_size=3)},
        optional={"taskId": ids, "contextId": contexts, "metadata": st.dictionaries(st.text(max_size=5), scalars, max_size=2)},
    )


def message_03(ids: st.SearchStrategy, contexts: st.SearchStrategy) -> st.SearchStrategy:
    part = st.sampled_from([{"kind": "text", "text": "hello"}, {"kind": "data", "data": {"n": 1}}, {"kind": "file", "file": {"uri": "https://example.com/a", "mimeType": "text/plain"}}]) | deep_data.map(lambda d: {"kind": "data", "data": d})
    return st.fixed_dictionaries(
        {"kind": st.just("message"), "messageId": st.uuids().map(str), "role": st.just("user"), "parts": st.lists(part, min_size=1, max_size=3)},
        optional={"taskId": ids, "contextId": contexts},
    )


def valid_params(method: str, ids: st.SearchStrategy, contexts: st.SearchStrategy) -> st.SearchStrategy:
    """Params that are right for ``method`` (either version's name), before mutation."""
    push_url = st.sampled_from(["http://127.0.0.1:9/hook", "https://example.com/hook", "ftp://x/y", "http://[::1]/", ""])
    states = st.sampled_from(["TASK_STATE_COMPLETED", "completed", "TASK_STATE_WORKING", "nonsense", ""])
    table: dict[str, st.SearchStrategy] = {
        "SendMessage": st.fixed_dictionaries({"message": message_10(ids, contexts)}, optional={"configuration": st.fixed_dictionaries({"returnImmediately": st.booleans()}, optional={"historyLength": st.integers(-2, 5)})}),
        "message/send": st.fixed_dictionaries({"message": message_03(ids, contexts)}, optional={"configuration": st.fixed_dictionaries({"blocking": st.booleans()})}),
        "GetTask": st.fixed_dictionaries({"id": ids}, optional={"historyLength": st.integers(-3, 200)}),
        "tasks/get": st.fixed_dictionaries({"id": ids}, optional={"historyLength": st.integers(-3, 200)}),
        "ListTasks": st.fixed_dictionaries(
            {},
            optional={"pageSize": st.integers(-1, 120), "status": states, "contextId": contexts, "pageToken": st.text(max_size=20), "includeArtifacts": st.booleans(), "statusTimestampAfter": st.sampled_from(["2020-01-01T00:00:00Z", "yesterday", ""])},
        ),
        "CancelTask": st.fixed_dictionaries({"id": ids}),
        "SubscribeToTask": st.fixed_dictionaries({"id": ids}),
        "CreateTaskPushNotificationConfig": st.fixed_dictionaries({"taskId": ids, "url": push_url}, optional={"id": st.text(max_size=8), "token": st.text(max_size=8)}),
        "tasks/pushNotificationConfig/set": st.fixed_dictionaries({"taskId": ids, "pushNotificationConfig": st.fixed_dictionaries({"url": push_url}, optional={"id": st.text(max_size=8)})}),
        "GetTaskPushNotificationConfig": st.fixed_dictionaries({"taskId": ids, "id": st.sampled_from(["cfg", "", "nope"])}),
        "DeleteTaskPushNotificationConfig": st.fixed_dictionaries({"taskId": ids, "id": st.sampled_from(["nope", ""])}),
        "tasks/pushNotificationConfig/get": st.fixed_dictionaries({"id": ids}, optional={"pushNotificationConfigId": st.sampled_from(["cfg", "nope"])}),
        "tasks/pushNotificationConfig/delete": st.fixed_dictionaries({"id": ids, "pushNotificationConfigId": st.sampled_from(["nope", ""])}),
        "ListTaskPushNotificationConfigs": st.fixed_dictionaries({"taskId": ids}),
        "tasks/pushNotificationConfig/list": st.fixed_dictionaries({"id": ids}),
    }
    aliases = {"SendStreamingMessage": "SendMessage", "message/stream": "message/send", "tasks/list": "ListTasks", "tasks/cancel": "CancelTask", "tasks/resubscribe": "SubscribeToTask"}
    return table.get(aliases.get(method, method), st.just({}))


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy) -> Any:
    """A valid value with a few fields replaced by values of any type, removed, or added."""
    value = json.loads(json.dumps(draw(base)))
    for _ in range(draw(st.integers(0, 3))):
        paths = paths_of(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        holder = value
        for step in path[:-1]:
            holder = holder[step]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            holder[path[-1]] = draw(json_values)
        elif op == "delete":
            del holder[path[-1]]
        elif isinstance(holder, dict):
            holder[draw(st.text(max_size=10))] = draw(json_values)
    return value


@st.composite
def envelopes(draw: st.DrawFn, target: Target) -> tuple[dict, str | None]:
    """A JSON-RPC request with any method name of either version, sent with either version."""
    ids = task_ids(target)
    contexts = st.sampled_from(target.context_ids) | st.text(max_size=20)
    method = draw(st.sampled_from(METHODS_10 + METHODS_03) | st.text(max_size=20))
    params = draw(mutated(valid_params(method, ids, contexts)))
    request_id = draw(st.none() | st.integers(-(2**40), 2**40) | st.text(max_size=10))
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    for _ in range(draw(st.integers(0, 1))):  # now and then the envelope itself is bent too
        field = draw(st.sampled_from(["jsonrpc", "id", "method", "params"]))
        if draw(st.booleans()):
            body[field] = draw(json_values)
        else:
            body.pop(field)
    assume(not target.never_ends(body.get("method") in ("SubscribeToTask", "tasks/resubscribe"), json.dumps(body.get("params"))))
    return body, draw(versions)


# ---- properties -----------------------------------------------------------------------------


def post_rpc(target: Target, content: bytes, version: str | None, content_type: str | None = "application/json") -> httpx.Response:
    headers = {}
    if version:
        headers["A2A-Version"] = version
    if content_type:
        headers["Content-Type"] = content_type
    return target.http.post("/a2a", content=content, headers=headers)


def test_arbitrary_bodies_get_a_json_rpc_error(target):
    @fuzz(400)
    @given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()), version=versions)
    def run(body: bytes, version: str | None) -> None:
        check_rpc(post_rpc(target, body, version))

    run()
    audit_everything(target.redis)


def test_every_method_with_mutated_params_and_envelopes(target):
    @fuzz(1200)
    @given(request=envelopes(target))
    def run(request: tuple[dict, str | None]) -> None:
        body, version = request
        sent_id = body.get("id", None)
        well_formed = body.get("jsonrpc") == "2.0" and (sent_id is None or (isinstance(sent_id, str | int) and not isinstance(sent_id, bool)))
        check_rpc(post_rpc(target, json.dumps(body).encode(), version), sent_id if well_formed else ...)

    before = len(all_task_ids(target.redis))
    run()
    assert audit_everything(target.redis) > before  # the generated sends did create tasks


header_text = st.text(alphabet=string.ascii_letters + string.digits + " .;=/-+*", max_size=24).map(str.strip)


def test_generated_version_and_content_type_headers(target):
    @fuzz(300)
    @given(
        version=st.sampled_from(["1.0", "0.3", "1", "1.0.3", "0.3.0", "2.0", "0.2", "1.x", ""]) | header_text,
        content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]) | header_text,
        method=st.sampled_from(["GetTask", "tasks/get", "ListTasks", "tasks/list"]),
    )
    def run(version: str, content_type: str | None, method: str) -> None:
        body = {"jsonrpc": "2.0", "id": "h", "method": method, "params": {"id": target.task_ids[0]} if "get" in method.lower() else {}}
        check_rpc(post_rpc(target, json.dumps(body).encode(), version or None, content_type or None), "h")

    run()
    audit_everything(target.redis)


# ---- HTTP+JSON ------------------------------------------------------------------------------

ROUTES = ["message:send", "message:stream", "tasks", "tasks/{id}", "tasks/{id}:cancel", "tasks/{id}:subscribe", "tasks/{id}/pushNotificationConfigs", "tasks/{id}/pushNotificationConfigs/{cfg}", "extendedAgentCard", "card"]
QUERY_NAMES = ["pageSize", "historyLength", "includeArtifacts", "status", "contextId", "pageToken", "statusTimestampAfter", "A2A-Version", "other"]


def segment(target: Target) -> st.SearchStrategy:
    """A path segment: a real id, text, or raw bytes (percent-encoded, UTF-8 or not)."""
    return st.sampled_from(target.task_ids) | st.text(max_size=30).map(lambda s: quote(s, safe="")) | st.binary(max_size=12).map(lambda b: quote(b, safe=""))


@st.composite
def rest_requests(draw: st.DrawFn, target: Target) -> tuple[str, str, dict, bytes | None, dict]:
    prefix = draw(st.sampled_from(["/", "/v1/"]))
    route = draw(st.sampled_from(ROUTES))
    path = prefix + route.format(id=draw(segment(target)), cfg=draw(st.sampled_from(["cfg", "nope"]) | segment(target)))
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]))
    query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES), st.text(max_size=12) | st.integers(-5, 500).map(str) | st.sampled_from(["true", "false", "TASK_STATE_COMPLETED"]), max_size=3))
    ids = task_ids(target)
    contexts = st.sampled_from(target.context_ids) | st.text(max_size=20)
    send_10 = st.fixed_dictionaries({"message": message_10(ids, contexts), "configuration": st.just({"returnImmediately": True})})
    send_03 = st.fixed_dictionaries({"request": st.fixed_dictionaries({"messageId": st.uuids().map(str), "role": st.just("ROLE_USER"), "content": st.just([{"text": "hi"}])}), "configuration": st.just({"blocking": False})})
    push = st.fixed_dictionaries({"url": st.sampled_from(["http://127.0.0.1:9/hook", "gopher://x", ""])}, optional={"id": st.text(max_size=6)})
    payload = draw(st.none() | mutated(send_10 | send_03 | push) | json_values)
    body = draw(st.sampled_from([None, b"", b"{oops", b"\xff\xfe"])) if payload is None else json.dumps(payload).encode()
    headers = {"A2A-Version": draw(st.sampled_from(["1.0", "0.3", "9.9"]))} if draw(st.booleans()) else {}
    if body:
        headers["Content-Type"] = "application/json"
    assume(not target.never_ends(path.endswith(":subscribe"), path))
    return method, path, query, body, headers


def test_rest_paths_params_and_bodies(target):
    @fuzz(1000)
    @given(request=rest_requests(target))
    def run(request: tuple[str, str, dict, bytes | None, dict]) -> None:
        method, path, query, body, headers = request
        response = target.http.request(method, path, params=query, content=body, headers=headers)
        check_rest(response)

    run()
    audit_everything(target.redis)
