"""Scenario 3: Redis (AOF, fsync always) SIGKILLed and restarted while tasks flow through the endpoint."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.faults.audit import assert_clean
from tests.faults.tools import SubmitFlow, attempts, count_finished, eventually, report, states
from tests.support import RedisServer

pytestmark = pytest.mark.faults

ENV = {
    "A2A_AGENT": "noop",
    "A2A_QUEUE_OPTIONS_TIMEOUT": "1s",
    "A2A_QUEUE_RECONNECT_BACKOFF_MAX": "500ms",
    "A2A_TASK_RETENTION_MAX_COMPLETED_TASKS": "100000",
}
OUTAGES = 2
DOWN_S = 2.5


async def test_redis_killed_and_restarted_under_load(processes, tmp_path):
    redis_server = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    servers = [redis_server]
    try:
        server = processes.serve(redis_server.url, A2A_EMBEDDED_WORKERS="0", **ENV)
        workers = [processes.worker(redis_server.url, **ENV) for _ in range(2)]
        for worker in workers:
            await eventually(lambda worker=worker: "Worker started" in worker.output, message="the workers to start")
        flow = SubmitFlow(server.url)
        clients = flow.start(4)
        recoveries, health_while_down, metrics_while_down = [], [], []
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(OUTAGES):
                await asyncio.sleep(2)
                servers[-1].kill(signal.SIGKILL)
                await asyncio.sleep(DOWN_S)
                health_while_down.append((await http.get(f"{server.url}/health")).status_code)
                metrics_while_down.append(await http.get(f"{server.url}/metrics"))
                servers.append(RedisServer("--appendonly", "yes", "--appendfsync", "always", port=redis_server.port, folder=redis_server.folder).start())
                back = time.monotonic()
                await eventually(lambda back=back: flow.last_ack > back, timeout=30, message="the endpoint to acknowledge again")
                recoveries.append(flow.last_ack - back)
            await asyncio.sleep(1)
        flow.running = False
        await asyncio.gather(*clients)

        client = servers[-1].client()
        ids = flow.acknowledged
        await eventually(lambda: count_finished(client, ids) == len(ids), timeout=60, message="every acknowledged task to finish")
        drained_s = time.monotonic() - back
        # A take that Redis ran just before it was killed, whose reply the worker never got,
        # strands ids in the processing list; recovery puts them back after its grace (5 s)
        # and a claim drops those whose task is finished. The audit below then finds none.
        await eventually(lambda: client.llen("a2a:processing") == 0, timeout=30, message="recovery to empty the processing list")
        for worker in workers:
            assert worker.stop() == 0
        assert server.stop() == 0
        final = states(client, ids)
        lost = sum(1 for s in final.values() if s == "missing")
        assert lost == 0 and set(final.values()) == {"completed"}
        assert flow.hangs == 0
        assert flow.errors, "no request met the outage: the test did not test anything"
        answered = [e for e in flow.errors if not e.startswith("transport")]
        assert answered and all(" -32603 " in e and "Redis" in e for e in answered), answered[:3]
        assert health_while_down == [503] * OUTAGES
        assert [m.status_code for m in metrics_while_down] == [503] * OUTAGES
        assert all(m.json()["error"]["status"] == "UNAVAILABLE" and "Redis" in m.json()["error"]["message"] for m in metrics_while_down)
        assert "Redis unavailable during GET /metrics" in server.output
        for worker in workers:
            assert "Redis unavailable while claiming" in worker.output or "Heartbeat failed" in worker.output
        audit = assert_clean(client, ids)
        report(
            "redis-restart", acknowledged=len(ids), refused_while_down=len(flow.errors), hangs=flow.hangs, lost=lost,
            duplicated_history=0, rerun=sum(n > 1 for n in attempts(client, ids).values()), outages=OUTAGES, down_s=DOWN_S, recover_s=max(round(r, 1) for r in recoveries), all_done_after_restart_s=round(drained_s, 1),
            sample_error=flow.errors[0][:120], audit=audit,
        )  # fmt: skip
    finally:
        servers[-1].stop()
