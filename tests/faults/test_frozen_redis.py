"""A Redis that stops answering (SIGSTOP: its connections stay open, nothing comes back).

Clients get an error within A2A_QUEUE_OPTIONS_TIMEOUT, never a hang, and the server serves
again as soon as Redis does.
"""

from __future__ import annotations

import contextlib
import signal
import time

import httpx
import pytest
import redis.asyncio as aioredis

from queueapp.model import new_id
from queueapp.store import QueueStore
from queueapp.store.keys import Keys
from queueapp.worker import reap
from tests.faults.tools import eventually, submit
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


@contextlib.asynccontextmanager
async def own_redis():
    """A redis-server of the test's own (it gets frozen), and a store on it."""
    redis_server = RedisServer().start()
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield redis_server, QueueStore(client, Keys("a2a"))
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        await client.aclose()
        redis_server.stop()


async def test_a_worker_stopped_while_redis_is_frozen_exits_0_after_the_grace(processes, make_config):
    """The running tasks cannot be handed back: each gets one warning, their leases run out and
    a reaper returns them, as for a worker that was killed; the worker itself exits 0 in time."""
    grace, env = 2.0, {"A2A_AGENT": "demo", "A2A_WORKER_CONCURRENCY": "2", "A2A_WORKER_LEASE": "3s", "A2A_WORKER_HEARTBEAT_INTERVAL": "500ms"}
    async with own_redis() as (redis_server, store):
        worker = processes.worker(redis_server.url, A2A_WORKER_SHUTDOWN_GRACE=f"{grace:g}s", A2A_QUEUE_OPTIONS_TIMEOUT=f"{TIMEOUT_S}s", **env)
        ids = await submit(store, 2, "sleep 30")
        await eventually(lambda: _all_working(store, ids), message="both tasks to run")
        redis_server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        worker.signal(signal.SIGTERM)
        code = worker.wait(30)
        stopped_s = time.monotonic() - started
        redis_server.process.send_signal(signal.SIGCONT)
        output = worker.output
        assert code == 0, output[-3000:]
        # The grace, then one timeout for the give-back that finds Redis away (and a little).
        assert stopped_s < grace + TIMEOUT_S + 2, (stopped_s, output[-3000:])
        assert "Traceback" not in output and "Worker stopped" in output
        for task_id in ids:
            assert output.count(f"Task not returned to the queue: Redis unavailable, task_id={task_id}") == 1
        # Their leases run out and a reaper puts them back at the front of the queue.
        config = make_config(A2A_QUEUE_URL=redis_server.url, A2A_WORKER_LEASE="3s")

        async def returned() -> bool:
            await reap(store, config)
            return sorted(await store.redis.lrange(store.keys.queue, 0, -1)) == sorted(ids)

        await eventually(returned, timeout=10, message="a reaper to return the tasks")


async def _all_working(store: QueueStore, ids: list[str]) -> bool:
    return all(record is not None and record.state.value == "working" for record in await store.get_many(ids))
