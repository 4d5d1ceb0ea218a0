"""Scenario 5: SIGTERM to a worker holding 10 running tasks."""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.faults.audit import assert_clean
from tests.faults.tools import count_finished, eventually, report, states, submit, sync_client

pytestmark = pytest.mark.faults

ENV = {"A2A_AGENT": "demo", "A2A_WORKER_CONCURRENCY": "10", "A2A_WORKER_SHUTDOWN_GRACE": "2s"}


def terminal_events(client, task_id: str) -> int:
    entries = client.lrange(f"a2a:events:{task_id}", 0, -1)
    return sum(1 for entry in entries if '"TASK_STATE_COMPLETED"' in entry and "statusUpdate" in entry)


async def test_sigterm_with_ten_running_tasks(processes, store, redis_url):
    client = sync_client(store)
    worker = processes.worker(redis_url, **ENV)
    short = await submit(store, 5, "sleep 1")
    long = await submit(store, 5, "sleep 4")
    ids = short + long
    await eventually(lambda: list(states(client, ids).values()).count("working") == 10, message="ten running tasks")
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    stopped_s = time.monotonic() - started
    after_stop = states(client, ids)
    assert [after_stop[t] for t in short] == ["completed"] * 5  # finished within the grace period
    assert [after_stop[t] for t in long] == ["submitted"] * 5  # returned to the queue
    assert sorted(client.lrange("a2a:queue", 0, -1)) == sorted(long)
    assert_clean(client, ids)
    requeued = sum(f"Task requeued, task_id={t}, reason=worker shutdown" in worker.output for t in long)

    successor = processes.worker(redis_url, **ENV)
    await eventually(lambda: count_finished(client, ids) == 10, timeout=30, message="the returned tasks to complete")
    assert successor.stop() == 0
    assert set(states(client, ids).values()) == {"completed"}
    assert [terminal_events(client, t) for t in ids] == [1] * 10  # none finished twice
    audit = assert_clean(client, ids)
    report("graceful-shutdown", tasks=10, finished_in_grace=5, requeued=requeued, lost=0, double_finished=0, exit_code=0, stop_s=round(stopped_s, 1), audit=audit)


def dequeued(output: str) -> list[str]:
    """The ids a worker claimed, in the order it claimed them."""
    return re.findall(r"Task dequeued for processing, task_id=(\S+),", output)


async def test_returned_tasks_are_taken_again_oldest_first(processes, store, redis_url):
    client = sync_client(store)
    env = {"A2A_AGENT": "demo", "A2A_WORKER_CONCURRENCY": "3", "A2A_WORKER_SHUTDOWN_GRACE": "500ms"}
    worker = processes.worker(redis_url, **env)
    ids = await submit(store, 3, "sleep 30")  # A, B, C: A is the oldest
    await eventually(lambda: list(states(client, ids).values()) == ["working"] * 3, message="three running tasks")
    assert dequeued(worker.output) == ids
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    # Workers take from the right: A must be there, then B, then C.
    assert client.lrange("a2a:queue", 0, -1) == ids[::-1]

    successor = processes.worker(redis_url, **env)
    await eventually(lambda: len(dequeued(successor.output)) == 3, message="the successor to claim the three tasks")
    assert dequeued(successor.output) == ids
    assert successor.stop() == 0
