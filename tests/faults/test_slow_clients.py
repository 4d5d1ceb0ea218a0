"""Slow and idle connections against a real ``serve`` (uvicorn and daphne) over real sockets.

The deadlines and the cap are set small (1 s, 1 s, 20 connections) so that each case takes
seconds; every loop here is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from queueapp.model import new_id
from tests.protocol.conftest import Live, start_live

pytestmark = pytest.mark.faults

HEADER_S, BODY_S, MAX_CONNECTIONS = 1.0, 1.0, 20
SLACK_S = 1.5  # the machine is shared and busy


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def live(request) -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-slow-") as folder:
        server = start_live(
            Path(folder),
            A2A_SERVER_ASGI=request.param,
            A2A_SERVER_HEADER_TIMEOUT=f"{HEADER_S}s",
            A2A_SERVER_BODY_TIMEOUT=f"{BODY_S}s",
            A2A_SERVER_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
            A2A_DASHBOARD_PUBLIC="true",  # an anonymous WebSocket may watch
        )
        yield server
        server.serve.stop()
        server.redis.stop()
    assert "Traceback" not in server.serve.output, server.serve.output[-4000:]


def connect(live: Live) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.serve.port), timeout=10)


def trickle(sock: socket.socket, data: bytes, every: float = 0.2, limit_s: float = 10) -> tuple[bytes, float]:
    """Send ``data`` a byte at a time until the server answers or closes; what it sent, and when."""
    started = time.monotonic()
    sock.settimeout(every)
    for byte in data:
        if time.monotonic() - started > limit_s:
            break
        try:
            sock.sendall(bytes([byte]))
            answer = sock.recv(4096)
            return answer, time.monotonic() - started
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return b"", time.monotonic() - started
    return b"(still open)", time.monotonic() - started


def timed_out(sock: socket.socket, answer: bytes) -> dict:
    """The JSON body of a 408 whose first bytes are ``answer`` (the rest is read up to the close)."""
    sock.settimeout(10)
    while chunk := sock.recv(4096):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"content-type: application/json" in head.lower(), head
    return json.loads(body)


def assert_binding_form(body: dict, binding: str) -> None:
    """A 408 in the error form of ``binding``: JSON-RPC (null id), 0.3 HTTP+JSON, or the 1.0 google.rpc.Status."""
    if binding == "jsonrpc":
        assert (body["jsonrpc"], body["id"], body["error"]["code"]) == ("2.0", None, -32600), body
        assert body["error"]["data"][0]["reason"] == "REQUEST_TIMEOUT"
        return
    assert (body["error"]["code"], body["error"]["details"][0]["reason"]) == (408, "REQUEST_TIMEOUT"), body
    assert "A2A_SERVER_HEADER_TIMEOUT" in body["error"]["message"]
    if binding == "rest-0.3":
        assert (body["type"], body["code"]) == ("RequestTimeoutError", -32600)
    else:
        assert "type" not in body


def test_headers_sent_a_byte_at_a_time_get_408_within_the_header_timeout(live):
    with connect(live) as sock:
        answer, elapsed = trickle(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")
        assert elapsed < HEADER_S + SLACK_S
        assert_binding_form(timed_out(sock, answer), "rest-1.0")  # no path yet: the 1.0 Status


@pytest.mark.parametrize("path,binding", [("/a2a", "jsonrpc"), ("/v1/tasks", "rest-0.3"), ("/tasks", "rest-1.0")])
def test_the_408_to_slow_headers_is_in_the_error_form_of_the_paths_binding(live, path, binding):
    with connect(live) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\n".encode())
        answer, elapsed = trickle(sock, b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n")
        assert elapsed < HEADER_S + SLACK_S
        assert_binding_form(timed_out(sock, answer), binding)


@pytest.mark.parametrize("path,binding", [("/a2a", "jsonrpc"), ("/v1/message:send", "rest-0.3")])
def test_a_body_sent_a_byte_at_a_time_gets_408_and_stores_nothing(live, path, binding):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "slow"}]}}}).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    tasks_before = live.rpc("ListTasks", {}).json()["result"]["totalSize"]
    with connect(live) as sock:
        sock.sendall(head)
        answer, elapsed = trickle(sock, body)
        assert elapsed < BODY_S + SLACK_S
        assert_binding_form(timed_out(sock, answer), binding)
    assert live.rpc("ListTasks", {}).json()["result"]["totalSize"] == tasks_before


def closed_by_server(sock: socket.socket, limit_s: float) -> bool:
    sock.settimeout(limit_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_silent_connections_beyond_the_cap_get_503_and_all_are_closed(live):
    silent = [connect(live) for _ in range(MAX_CONNECTIONS + 5)]
    try:
        time.sleep(0.2)  # let the server accept them all
        assert httpx.get(f"{live.url}/health", timeout=10).status_code == 503
        started = time.monotonic()
        assert all(closed_by_server(sock, HEADER_S + SLACK_S) for sock in silent)
        assert time.monotonic() - started < HEADER_S + SLACK_S
    finally:
        for sock in silent:
            sock.close()
    assert httpx.get(f"{live.url}/health", timeout=10).status_code == 200


def test_a_stream_longer_than_the_deadlines_is_not_cut(live):
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "sleep 3"}]}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": params}
    started, states = time.monotonic(), []
    with httpx.stream("POST", f"{live.url}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=30) as answer:
        for line in answer.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])["result"]
                states.append((event.get("statusUpdate") or event.get("task") or {}).get("status", {}).get("state"))
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert time.monotonic() - started > 3 * HEADER_S


def test_a_keep_alive_client_that_pauses_between_requests_is_served(live):
    with httpx.Client(base_url=live.url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            time.sleep(HEADER_S + 0.3)  # the idle connection may be closed; the client then opens a new one


async def test_a_dashboard_websocket_outlives_the_deadlines(live):
    origin = live.url
    async with websockets.connect(f"ws://127.0.0.1:{live.serve.port}/ws/dashboard/?page=overview", origin=origin, open_timeout=10) as ws:
        assert 'id="summary"' in await asyncio.wait_for(ws.recv(), 10)
        await asyncio.sleep(HEADER_S + BODY_S + 0.5)
        await asyncio.wait_for(await ws.ping(), 5)  # still open, and answered
        live.rpc("SendMessage", {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "hi"}]}})
        assert 'id="summary"' in await asyncio.wait_for(ws.recv(), 10)
