"""Scenario 1: workers SIGKILLed and restarted while they work through the queue."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.faults.audit import assert_clean
from tests.faults.tools import attempts, count_finished, eventually, report, states, submit, sync_client

pytestmark = pytest.mark.faults

TASKS = 300
WORKERS = 3
ENV = {
    "A2A_AGENT": "demo",
    "A2A_WORKER_LEASE": "2s",
    "A2A_WORKER_HEARTBEAT_INTERVAL": "200ms",
    "A2A_WORKER_MAX_ATTEMPTS": "50",  # a task may be hit by several kills in a row; none may fail for it
    "A2A_TASK_RETENTION_MAX_COMPLETED_TASKS": "100000",
}


async def test_random_worker_killed_every_second(processes, store, redis_url):
    client = sync_client(store)
    workers = [processes.worker(redis_url, **ENV) for _ in range(WORKERS)]
    ids = await submit(store, TASKS, "sleep 0.2")
    rng = random.Random(5)
    started = time.monotonic()
    kills = 0
    last_kill = started
    while count_finished(client, ids) < TASKS:
        assert time.monotonic() - started < 150, f"only {count_finished(client, ids)} of {TASKS} finished"
        await asyncio.sleep(1)
        if count_finished(client, ids) >= TASKS:
            break
        up = [i for i, w in enumerate(workers) if "Worker started" in w.output]  # a kill during start-up tests nothing
        if not up:
            continue
        index = rng.choice(up)
        workers[index].process.kill()
        workers[index].wait()
        kills += 1
        last_kill = time.monotonic()
        workers[index] = processes.worker(redis_url, **ENV)
    done = time.monotonic()
    for worker in workers:
        await eventually(lambda worker=worker: "Worker started" in worker.output, message="a restarted worker to be up")
        assert worker.stop() == 0
    final = states(client, ids)
    assert set(final.values()) == {"completed"}, {s: n for s, n in ((s, list(final.values()).count(s)) for s in set(final.values()))}
    claimed = attempts(client, ids)
    twice = sum(1 for n in claimed.values() if n > 1)
    audit = assert_clean(client, ids)
    report(
        "worker-crash", tasks=TASKS, workers=WORKERS, kills=kills, lost=0, duplicated_history=0,
        processed_more_than_once=twice, max_attempts=max(claimed.values()), total_s=round(done - started, 1),
        recover_after_last_kill_s=round(done - last_kill, 1), audit=audit,
    )  # fmt: skip
