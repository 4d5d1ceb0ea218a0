"""Retention: ``cleanup_tasks`` and the workers' periodic cleaner apply one policy to the history only."""

from __future__ import annotations

import asyncio

import pytest
import redis

from queueapp import model, retention
from queueapp.states import TaskState
from queueapp.store import QueueStore
from tests.faults.audit import assert_clean
from tests.faults.tools import eventually, manage, running_worker, submit, sync_client
from tests.support import base_env

HOUR_MS = 3600 * 1000


async def finished_tasks(store: QueueStore, state: TaskState, count: int, *, age_ms: int = 0, monkeypatch=None) -> list[str]:
    """Tasks ended in ``state``, oldest first, each finished ``age_ms`` ago (plus a step apart)."""
    ids = []
    for i in range(count):
        [task_id] = await submit(store, 1, f"{state.value} {i}")
        if age_ms and monkeypatch:
            base = model.now_ms() - age_ms
            monkeypatch.setattr(model, "now_ms", lambda base=base: base)
        await store.finish_unclaimed(await store.require(task_id), state, "ended for the test")
        if age_ms and monkeypatch:
            monkeypatch.undo()
        ids.append(task_id)
        await asyncio.sleep(0.002)  # distinct finish times, so "newest" is well defined
    return ids


async def snapshot(store: QueueStore) -> dict[str, object]:
    r = store.redis
    result: dict[str, object] = {}
    for key in sorted(await r.keys("a2a:*")):
        kind = await r.type(key)
        if kind == "hash":
            result[key] = await r.hgetall(key)
        elif kind == "zset":
            result[key] = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            result[key] = sorted(await r.smembers(key))
        elif kind == "list":
            result[key] = await r.lrange(key, 0, -1)
        else:
            result[key] = await r.get(key)
    return result


async def traces_of(store: QueueStore, task_id: str) -> list[str]:
    """Every key that names the id or holds it as a member."""
    found = []
    for key, value in (await snapshot(store)).items():
        members = [m[0] if isinstance(m, tuple) else m for m in value] if isinstance(value, list) else list(value) if isinstance(value, dict) else []
        if task_id in key or task_id in members:
            found.append(key)
    return found


@pytest.fixture
async def history(store: QueueStore):
    """5 completed, 3 failed, 2 canceled, 1 rejected, plus one waiting and one running task."""
    made = {
        "completed": await finished_tasks(store, TaskState.COMPLETED, 5),
        "failed": await finished_tasks(store, TaskState.FAILED, 3),
        "canceled": await finished_tasks(store, TaskState.CANCELED, 2),
        "rejected": await finished_tasks(store, TaskState.REJECTED, 1),
    }
    [running, waiting] = await submit(store, 2, "unfinished")
    ids, _ = await store.take(1)
    await store.lease(ids, "some-worker", 600)
    made["unfinished"] = [running, waiting]
    return made


async def test_cleanup_tasks_dry_run_reports_and_changes_nothing(store, redis_url, history, tmp_path):
    before = await snapshot(store)
    env = base_env(redis_url, str(tmp_path), A2A_TASK_RETENTION_MAX_COMPLETED_TASKS="2", A2A_TASK_RETENTION_MAX_FAILED_TASKS="1")
    result = manage("cleanup_tasks", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Would remove 3 completed tasks",
        "Would remove 2 failed tasks",
        "Would remove 1 canceled task",
        "Would remove 6 tasks in all",
    ]
    assert await snapshot(store) == before


async def test_cleanup_tasks_keeps_the_newest_and_leaves_no_trace(store, redis_url, history, tmp_path):
    env = base_env(redis_url, str(tmp_path), A2A_TASK_RETENTION_MAX_COMPLETED_TASKS="2", A2A_TASK_RETENTION_MAX_FAILED_TASKS="1")
    result = manage("cleanup_tasks", env=env)
    assert result.returncode == 0, result.stderr
    assert "Removed 3 completed tasks" in result.stdout and "Removed 6 tasks in all" in result.stdout
    removed = history["completed"][:3] + history["failed"][:2] + history["canceled"][:1]
    kept = history["completed"][3:] + history["failed"][2:] + history["canceled"][1:] + history["rejected"]
    for task_id in removed:
        assert await traces_of(store, task_id) == [], task_id
    for task_id in kept + history["unfinished"]:
        assert await store.get(task_id) is not None
    running, waiting = history["unfinished"]
    assert (await store.require(running)).worker == "some-worker"
    assert await store.redis.lrange(store.keys.queue, 0, -1) == [waiting]
    stats = await store.stats()
    assert stats.by_state["completed"] == 2 and stats.by_state["failed"] == 1 and stats.by_state["canceled"] == 1
    assert_clean(sync_client(store), kept + [waiting], quiet=False)
    again = manage("cleanup_tasks", env=env)
    assert "Removed nothing" in again.stdout


async def test_tasks_older_than_the_maximum_age_are_removed(store, config, monkeypatch):
    old = await finished_tasks(store, TaskState.COMPLETED, 2, age_ms=2 * HOUR_MS, monkeypatch=monkeypatch)
    old_failed = await finished_tasks(store, TaskState.FAILED, 1, age_ms=2 * HOUR_MS, monkeypatch=monkeypatch)
    recent = await finished_tasks(store, TaskState.COMPLETED, 2)
    [waiting] = await submit(store, 1, "still waiting")
    cfg = config.replace(task_retention_max_age=3600.0)
    assert await retention.apply(store, cfg, dry_run=True) == {"completed": 2, "failed": 1}
    assert await retention.apply(store, cfg) == {"completed": 2, "failed": 1}
    assert [await store.get(t) for t in old + old_failed] == [None, None, None]
    assert_clean(sync_client(store), recent + [waiting], quiet=False)


async def test_retention_runs_once_per_interval_across_processes(store, config):
    await finished_tasks(store, TaskState.COMPLETED, 3)
    cfg = config.replace(task_retention_max_completed_tasks=1)
    assert await retention.run_if_due(store, cfg) == {"completed": 2}
    await finished_tasks(store, TaskState.COMPLETED, 2)
    assert await retention.run_if_due(store, cfg) is None  # another process did it a moment ago
    assert await store.redis.zcard(store.keys.index_history_state("completed")) == 3


async def test_workers_apply_the_policy_periodically(store, config):
    ids = await finished_tasks(store, TaskState.COMPLETED, 4)
    cfg = config.replace(task_retention_max_completed_tasks=1, queue_cleanup_interval=0.1)
    async with running_worker(store, cfg):
        await eventually(lambda: _equals(store.redis.zcard(store.keys.index_history_state("completed")), 1), message="the periodic cleaner")
    assert await store.get(ids[-1]) is not None


async def _equals(value, expected) -> bool:
    return await value == expected


async def test_removals_in_batches_count_each_task_once_and_drop_stale_ids(store, config, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 4)  # several batches from a handful of tasks
    ids = await finished_tasks(store, TaskState.COMPLETED, 11)
    index = store.keys.index_history_state("completed")
    score = await store.redis.zscore(index, ids[2])
    await store.delete(ids[2])
    await store.redis.zadd(index, {ids[2]: score})  # gone, but still in its history index
    assert await retention.apply(store, config.replace(task_retention_max_completed_tasks=1)) == {"completed": 9}
    assert await store.redis.zrange(index, 0, -1) == [ids[-1]]
    assert_clean(sync_client(store), [ids[-1]], quiet=False)


async def test_a_task_retried_after_retention_read_it_is_left_and_the_rest_removed(store, config, monkeypatch):
    # The dashboard's Retry landing between retention's read and its delete. Before, the
    # delete's "not finished" stopped the whole run: cleanup_tasks failed and the states after
    # it were not looked at.
    canceled = await finished_tasks(store, TaskState.CANCELED, 3)
    failed = await finished_tasks(store, TaskState.FAILED, 2)
    read = store.history_beyond

    async def read_then_retry(*args):
        beyond = await read(*args)
        await store.retry(canceled[0])
        return beyond

    monkeypatch.setattr(store, "history_beyond", read_then_retry)
    removed = await retention.apply(store, config.replace(task_retention_max_failed_tasks=0))
    assert removed == {"canceled": 2, "failed": 2}
    assert (await store.require(canceled[0])).state is TaskState.SUBMITTED
    assert [await store.get(task_id) for task_id in [*canceled[1:], *failed]] == [None] * 4


async def test_a_full_redis_that_refuses_the_lock_still_gets_the_policy_applied(store, config, monkeypatch):
    # The lock is a write, which a full Redis refuses; the deletes that would free it are not.
    # Before, the workers' retention stopped at the lock every time, and only cleanup_tasks freed memory.
    ids = await finished_tasks(store, TaskState.COMPLETED, 3)

    async def full(*args):
        raise redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(store, "try_lock", full)
    assert await retention.run_if_due(store, config.replace(task_retention_max_completed_tasks=1)) == {"completed": 2}
    assert [await store.get(task_id) is None for task_id in ids] == [True, True, False]
