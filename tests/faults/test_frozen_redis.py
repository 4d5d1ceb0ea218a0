"""A Redis that stops answering (SIGSTOP: its connections stay open, nothing comes back).

Clients get an error within A2A_QUEUE_OPTIONS_TIMEOUT, never a hang, and the server serves
again as soon as Redis does.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from queueapp.model import new_id
from tests.support import RedisServer

pytestmark = pytest.mark.faults

TIMEOUT_S = 1.0


def send(url: str, text: str = "hi") -> tuple[httpx.Response, float]:
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}]}, "configuration": {"returnImmediately": True}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
    started = time.monotonic()
    answer = httpx.post(f"{url}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=30)
    return answer, time.monotonic() - started


def test_send_message_to_a_frozen_redis_fails_within_the_timeout(processes):
    redis_server = RedisServer().start()
    try:
        serve = processes.serve(redis_server.url, A2A_QUEUE_OPTIONS_TIMEOUT=f"{TIMEOUT_S}s", A2A_QUEUE_RECONNECT_BACKOFF_MAX="500ms", A2A_EMBEDDED_WORKERS="0")
        assert "result" in send(serve.url)[0].json()
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            timings = []
            for _ in range(3):
                answer, elapsed = send(serve.url)
                timings.append(elapsed)
                error = answer.json()["error"]
                assert error["code"] == -32603 and "unavailable" in error["message"]
                started = time.monotonic()
                rest = httpx.post(f"{serve.url}/message:send", json={"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "x"}]}}, headers={"A2A-Version": "1.0"}, timeout=30)
                timings.append(time.monotonic() - started)
                assert rest.status_code == 503 and "unavailable" in rest.text
            # One timeout, plus a little: no retry makes a client wait a second timeout.
            assert max(timings) < 1.8 * TIMEOUT_S, timings
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while (answer := send(serve.url, "again")[0]).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "result" in answer.json()
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        redis_server.stop()
