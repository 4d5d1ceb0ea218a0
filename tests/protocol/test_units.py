"""Fast unit tests: SSE cleanup, 0.3 leniency, version negotiation, credentials, error table."""

from __future__ import annotations

import asyncio

import pytest
from django.test import RequestFactory

from queueapp.auth import Authenticator, AuthError
from queueapp.config import load
from queueapp.protocol import codec03, errors, sse, transport


async def test_closing_the_response_closes_the_event_source():
    closed = asyncio.Event()

    async def events():
        try:
            yield {"task": {"id": "t"}}
            await asyncio.sleep(3600)  # a quiet task
            yield {"never": True}
        finally:
            closed.set()

    frames = sse._frames(events(), lambda e: e, lambda e: {}, keepalive=0.05)
    assert (await anext(frames)).startswith(b"data: ")
    assert await anext(frames) == b": keep-alive\n\n"
    await frames.aclose()  # what the ASGI server does when the client goes away
    await asyncio.wait_for(closed.wait(), 2)


async def test_an_error_mid_stream_becomes_an_error_event():
    async def events():
        yield {"task": {"id": "t"}}
        raise errors.TaskNotFoundError("gone")

    frames = [f async for f in sse._frames(events(), lambda e: e, lambda e: {"error": e.message}, keepalive=5)]
    assert frames[-1] == b'event: error\ndata: {"error":"gone"}\n\n'


def test_03_requests_accept_10_spellings():
    params = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}, {"url": "https://x/a.txt", "mediaType": "text/plain", "filename": "a.txt"}, {"data": {"n": 1}}]}}
    message = codec03.parse_params("message/send", params)["message"]
    assert message["role"] == "ROLE_USER"
    assert message["parts"] == [{"text": "hi"}, {"url": "https://x/a.txt", "mediaType": "text/plain", "filename": "a.txt"}, {"data": {"n": 1}}]


def test_03_blocking_false_means_return_immediately():
    params = {"message": {"messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "x"}]}, "configuration": {"blocking": False}}
    assert codec03.parse_params("message/send", params)["configuration"]["returnImmediately"] is True


def test_03_answers_use_03_spelling():
    task = {"id": "t", "contextId": "c", "status": {"state": "TASK_STATE_INPUT_REQUIRED"}, "history": [{"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}]}
    answer = codec03.jsonrpc_result("GetTask", task)
    assert answer["kind"] == "task" and answer["status"]["state"] == "input-required"
    assert answer["history"][0]["role"] == "user" and answer["history"][0]["parts"][0] == {"kind": "text", "text": "x"}


@pytest.mark.parametrize("raw,version", [("", "0.3"), ("1.0", "1.0"), ("1", "1.0"), ("1.0.2", "1.0"), ("0.3", "0.3"), ("0.3.0", "0.3")])
def test_version_negotiation(raw, version):
    request = RequestFactory().post("/a2a", headers={"A2A-Version": raw} if raw else {})
    assert transport.requested_version(request) == version


@pytest.mark.parametrize("raw", ["2.0", "0.2", "one", "1.x"])
def test_unknown_versions_are_refused(raw):
    with pytest.raises(errors.VersionNotSupportedError):
        transport.requested_version(RequestFactory().post("/a2a", headers={"A2A-Version": raw}))


async def test_credentials_are_named_and_checked():
    auth = Authenticator.from_config(load({"A2A_AUTH_TOKENS": "alice:t1,t2", "A2A_AUTH_API_KEYS": "k1"}))
    assert await auth.authenticate({"Authorization": "Bearer t1"}) == "alice"
    assert await auth.authenticate({"Authorization": "bearer t2"}) == "token-2"
    assert await auth.authenticate({"X-API-Key": "k1"}) == "key-1"
    assert await auth.authenticate({"authorization": "Bearer t1"}) == "alice"  # gRPC metadata is lower-case
    assert await auth.authenticate({"x-api-key": "k1"}) == "key-1"
    with pytest.raises(AuthError, match="Bearer <token> header or an X-API-Key"):
        await auth.authenticate({})
    with pytest.raises(AuthError, match="not valid"):
        await auth.authenticate({"Authorization": "Bearer t3"})
    assert await Authenticator.from_config(load({})).authenticate({}) is None


def test_every_error_class_has_a_row_in_the_table():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ProtocolError) and c is not errors.ProtocolError]
    assert set(classes) == set(errors.ERROR_TABLE)
    assert set(classes) == set(errors.V03_TYPE_NAMES)  # a 0.3 HTTP+JSON error never names another
    assert errors.jsonrpc_error(errors.VersionNotSupportedError(), "0.3")["code"] == -32600  # 0.3 has no -32009


def test_a_create_not_confirmed_on_replicas_says_so_not_that_the_task_changed():
    from queueapp.store import NotReplicated

    error = errors.from_store_error(NotReplicated("0 of 1 replicas confirmed the task within 1000 ms; retry with the same messageId"))
    assert str(error) == "The task was written but not confirmed on enough replicas: 0 of 1 replicas confirmed the task within 1000 ms; retry with the same messageId."
    assert errors.wire(error).code == -32603
