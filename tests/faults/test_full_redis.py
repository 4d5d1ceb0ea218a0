"""A full Redis (maxmemory with noeviction): it answers, but refuses every write.

Like an outage, it is waited out: clients get STORAGE_UNAVAILABLE, workers keep going and
their running tasks are not failed. Before, the first refused claim killed every worker (an
embedded one silently, leaving the server taking tasks that nothing ran), a refused progress
write failed the task with "OutOfMemoryError", and each refused request logged a traceback.
"""

from __future__ import annotations

import time

import httpx
import pytest

from queueapp.model import new_id
from tests.faults.audit import assert_clean
from tests.support import RedisServer, wait_until

pytestmark = pytest.mark.faults


def send(url: str, text: str, *, wait: bool = False) -> dict:
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}]}, "configuration": {"returnImmediately": not wait}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
    return httpx.post(f"{url}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=30).json()


def test_a_full_redis_is_waited_out_by_the_server_and_its_workers(processes):
    redis_server = RedisServer("--maxmemory-policy", "noeviction").start()
    client = redis_server.client()
    try:
        serve = processes.serve(redis_server.url, A2A_AGENT="demo", A2A_EMBEDDED_WORKERS="1", A2A_QUEUE_RECONNECT_BACKOFF_MAX="500ms")
        running = send(serve.url, "sleep 2")["result"]["task"]["id"]
        wait_until(lambda: client.hget(f"a2a:active:{running}", "state") == "working", message="the task to start")
        client.config_set("maxmemory", "1")  # below what it holds: every write is refused
        try:
            error = send(serve.url, "refused")["error"]
            assert error["code"] == -32603 and "OutOfMemoryError" in error["message"]
            assert error["data"][0]["reason"] == "STORAGE_UNAVAILABLE"
            time.sleep(3)  # the running task ends meanwhile, and its worker's claims are refused
        finally:
            client.config_set("maxmemory", "0")
        # The worker is still there: a task sent now runs; the one that ended while Redis was
        # full is completed, not failed.
        answer = send(serve.url, "hello", wait=True)["result"]["task"]
        assert answer["status"]["state"] == "TASK_STATE_COMPLETED"
        wait_until(lambda: client.hget(f"a2a:deadletter:{running}", "state") == "completed", timeout=15, message="the running task to complete")
        assert serve.stop() == 0
        assert "Redis unavailable while claiming" in serve.output and "OutOfMemoryError" in serve.output
        assert "Traceback" not in serve.output and "Task failed" not in serve.output
        assert_clean(client, [running, answer["id"]])
    finally:
        redis_server.stop()
