"""Scenario 4: every normal client connection dropped with CLIENT KILL, again and again, under load."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.audit import assert_clean
from tests.faults.tools import SubmitFlow, attempts, count_finished, eventually, report, states
from tests.support import RedisServer

pytestmark = pytest.mark.faults

TASKS = 500
ENV = {"A2A_AGENT": "demo", "A2A_QUEUE_RECONNECT_BACKOFF_MAX": "500ms", "A2A_TASK_RETENTION_MAX_COMPLETED_TASKS": "100000"}


async def test_client_kill_type_normal_during_load(processes):
    redis_server = RedisServer().start()
    try:
        client = redis_server.client()
        server = processes.serve(redis_server.url, A2A_EMBEDDED_WORKERS="0", **ENV)
        workers = [processes.worker(redis_server.url, **ENV) for _ in range(2)]
        for worker in workers:
            await eventually(lambda worker=worker: "Worker started" in worker.output, message="the workers to start")
        flow = SubmitFlow(server.url, limit=TASKS, text="sleep 0.05")
        clients = flow.start(4)
        kills, dropped = 0, 0
        started = time.monotonic()
        while not all(c.done() for c in clients):
            await asyncio.sleep(0.3)
            dropped += client.client_kill_filter(_type="normal", skipme=True)
            kills += 1
        await asyncio.gather(*clients)
        last_kill = time.monotonic()
        ids = flow.acknowledged
        await eventually(lambda: count_finished(client, ids) == len(ids), timeout=90, message="every acknowledged task to finish")
        drained_s = time.monotonic() - last_kill
        for worker in workers:
            assert worker.stop() == 0
        assert server.stop() == 0
        final = states(client, ids)
        assert set(final.values()) == {"completed"}
        assert flow.hangs == 0 and kills >= 3 and dropped > 0
        assert len(ids) + len(flow.errors) == TASKS
        audit = assert_clean(client, ids)
        report(
            "client-kill", requests=TASKS, acknowledged=len(ids), refused=len(flow.errors), lost=0, duplicated_history=0, rerun=sum(n > 1 for n in attempts(client, ids).values()),
            kill_rounds=kills, connections_dropped=dropped, load_s=round(last_kill - started, 1), done_after_last_kill_s=round(drained_s, 1), audit=audit,
        )  # fmt: skip
    finally:
        redis_server.stop()
