"""Request limits: body size (before anything is read into memory), parts per message, history length."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from queueapp.model import dumps, new_id
from tests.protocol.conftest import Live, start_live

LIMIT = 4096


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-limits-") as folder:
        server = start_live(Path(folder), A2A_MAX_BODY_BYTES=str(LIMIT), A2A_MAX_PARTS="3", A2A_MAX_HISTORY_LENGTH="2")
        yield server
        server.serve.stop()
        server.redis.stop()


def body_of_size(size: int) -> bytes:
    """A valid SendMessage request of exactly ``size`` bytes."""
    head = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": ""}]}}}
    empty = len(dumps(head).encode())
    head["params"]["message"]["parts"][0]["text"] = "x" * (size - empty)
    body = dumps(head).encode()
    assert len(body) == size
    return body


def test_body_at_the_limit_is_accepted_and_just_over_is_refused(live):
    headers = {"A2A-Version": "1.0", "Content-Type": "application/json"}
    at_limit = httpx.post(f"{live.url}/a2a", content=body_of_size(LIMIT), headers=headers, timeout=30)
    assert at_limit.status_code == 200 and "result" in at_limit.json()
    over = httpx.post(f"{live.url}/a2a", content=body_of_size(LIMIT + 1), headers=headers)
    assert over.status_code == 413
    error = over.json()["error"]
    assert error["code"] == -32600 and f"the limit is {LIMIT} bytes" in error["message"]


def test_rest_body_over_the_limit_gets_a_status_body(live):
    response = httpx.post(f"{live.url}/message:send", content=b"{" + b" " * LIMIT + b"}", headers={"A2A-Version": "1.0"})
    assert response.status_code == 413
    assert response.json()["error"]["details"][0]["reason"] == "PAYLOAD_TOO_LARGE"
    assert "type" not in response.json()


def test_v03_rest_body_over_the_limit_gets_the_03_form(live):
    response = httpx.post(f"{live.url}/v1/message:send", content=b"{" + b" " * LIMIT + b"}", headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    body = response.json()
    assert (body["type"], body["code"]) == ("PayloadTooLargeError", -32600)
    assert f"the limit is {LIMIT} bytes" in body["message"]
    assert body["error"]["details"][0]["reason"] == "PAYLOAD_TOO_LARGE"


# Any method may carry a body; each is held to the same cap as a POST.
EVERY_METHOD = [
    ("POST", "/a2a"),
    ("GET", "/tasks"),
    ("GET", "/v1/tasks/x"),
    ("DELETE", "/tasks/x/pushNotificationConfigs/y"),
    ("OPTIONS", "/a2a"),
    ("PUT", "/message:send"),
]


@pytest.mark.parametrize("method,path", EVERY_METHOD)
def test_chunked_body_is_cut_off_once_it_passes_the_limit(live, method, path):
    def chunks():
        for _ in range(100):
            yield b" " * 1024  # 100 KiB with no Content-Length, far over the limit

    response = httpx.request(method, f"{live.url}{path}", content=chunks(), headers={"A2A-Version": "1.0"})
    assert response.status_code == 413
    assert "more than" in response.json()["error"]["message"]


@pytest.mark.parametrize("method,path", [*EVERY_METHOD, ("HEAD", "/tasks")])
def test_declared_length_over_the_limit_is_refused_before_the_body_is_sent(live, method, path):
    """The answer comes from the Content-Length alone: the client never sends the body."""
    parts = urlsplit(live.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n".encode())
        received = b""
        while b"A2A_MAX_BODY_BYTES" not in received:  # the answer may come in several packets
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        answer = received.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413")
    assert "A2A_MAX_BODY_BYTES" in answer or method == "HEAD"  # the answer to a HEAD has no body


def test_too_many_parts(live):
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "x"}] * 4}}
    error = live.rpc("SendMessage", params).json()["error"]
    assert error["code"] == -32602 and "at most 3" in error["message"]


def test_history_is_capped(live):
    task = live.rpc("SendMessage", {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "ask Name?"}]}}).json()["result"]["task"]
    reply = {"messageId": new_id(), "role": "ROLE_USER", "taskId": task["id"], "parts": [{"text": "Ann"}]}
    live.rpc("SendMessage", {"message": reply})
    full = live.rpc("GetTask", {"id": task["id"], "historyLength": 50}).json()["result"]
    assert len(full["history"]) == 2  # of 4 messages, the cap (A2A_MAX_HISTORY_LENGTH=2) keeps the last two
    assert full["history"][-1]["role"] == "ROLE_AGENT"
