"""The worker: claiming, failures, time limits, cancellation, leases, attempts and shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections import Counter

import pytest
import redis
import redis.asyncio as aioredis

from queueapp.agents import load_agent
from queueapp.store import QueueStore, TaskNotFound
from queueapp.worker import reap
from tests.agents import runs_key
from tests.faults.audit import assert_clean
from tests.faults.tools import eventually, running_worker, submit, sync_client, user_message


async def finished(store: QueueStore, task_id: str, timeout: float = 15):
    async def check():
        record = await store.get(task_id)
        return record if record is not None and record.finished else None

    return await eventually(check, timeout=timeout, message=f"task {task_id} to finish")


async def in_state(store: QueueStore, task_id: str, state: str, timeout: float = 15):
    async def check():
        record = await store.get(task_id)
        return record if record is not None and record.state.value == state else None

    return await eventually(check, timeout=timeout, message=f"task {task_id} to be {state}")


def status_text(record) -> str:
    return record.task["status"]["message"]["parts"][0]["text"]


# ---- in-process worker ----------------------------------------------------------------------


async def test_worker_completes_a_task_and_logs_it(store, config, caplog):
    caplog.set_level(logging.INFO, "queueapp")
    [task_id] = await submit(store, 1, "plain text")
    async with running_worker(store, config, "echo"):
        record = await finished(store, task_id)
    assert record.state.value == "completed" and record.attempts == 1
    assert f"Task dequeued for processing, task_id={task_id}, remaining_queue_length=0" in caplog.text
    assert f"Task completed successfully, task_id={task_id}" in caplog.text
    assert_clean(sync_client(store), [task_id])


async def test_a_stop_does_not_wait_out_the_blocking_read_of_an_idle_worker(store, config, monkeypatch):
    # The grace counts from the stop: a worker blocked waiting for work must not first sit out
    # its BLMOVE (made 30 s long here, so a stop that waited for it would time out).
    from queueapp.worker import lifecycle

    monkeypatch.setattr(lifecycle, "WAIT_TIMEOUT_S", 30.0)
    worker = lifecycle.Worker(store, load_agent("echo", config), config, run_maintenance=False)
    job = asyncio.create_task(worker.run())
    await eventually(lambda: _blocked_clients(store), message="the worker to block waiting for work")
    worker.stop()
    await asyncio.wait_for(job, 5)
    [task_id] = await submit(store, 1, "plain text")
    assert await store.redis.lrange(store.keys.queue, 0, -1) == [task_id]  # the closed read took nothing
    assert await store.redis.llen(store.keys.processing) == 0


async def test_a_failed_blocking_read_that_meets_a_cancel_is_not_reported_as_lost(store, config, monkeypatch):
    # The read fails (Redis went away) in the same turn as the worker's task is cancelled:
    # the error must not surface later as "Task exception was never retrieved".
    from queueapp.worker import lifecycle

    reported: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
    gate = asyncio.Event()

    async def failing_wait_take(timeout: float) -> str | None:
        await gate.wait()
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(store, "wait_take", failing_wait_take)
    worker = lifecycle.Worker(store, load_agent("echo", config), config, run_maintenance=False)
    job = asyncio.create_task(worker._wait_take())
    await asyncio.sleep(0.05)  # blocked in the read
    gate.set()
    job.cancel()  # runs after the read has failed
    with pytest.raises(asyncio.CancelledError):
        await job
    del job
    gc.collect()
    await asyncio.sleep(0)
    assert reported == []


async def _blocked_clients(store: QueueStore) -> bool:
    return (await store.redis.info("clients"))["blocked_clients"] >= 1


async def test_a_task_sent_while_paused_waits_in_the_queue_until_resumed(store, config):
    async with running_worker(store, config, "echo"):
        await asyncio.sleep(0.3)  # the worker is now blocked waiting for a task
        await store.pause(True)
        [task_id] = await submit(store, 1, "plain text")
        await asyncio.sleep(1.5)
        record = await store.require(task_id)
        assert record.state.value == "submitted" and record.attempts == 0  # never claimed, so never undone
        assert await store.redis.lrange(store.keys.queue, 0, -1) == [task_id]
        await store.pause(False)
        record = await finished(store, task_id)
    assert record.state.value == "completed" and record.attempts == 1
    assert_clean(sync_client(store), [task_id])


async def test_agent_exception_fails_the_task_and_the_worker_goes_on(store, config):
    ids = await submit(store, 2, "break")
    async with running_worker(store, config, "tests.agents.RaisingAgent"):
        records = [await finished(store, task_id) for task_id in ids]
    for record in records:
        assert record.state.value == "failed"
        assert record.error == "RuntimeError: agent exploded on 'break'"
        assert status_text(record) == record.error


async def test_an_agents_own_redis_error_fails_its_task_and_is_not_taken_for_an_outage(store, config):
    # Only the queue's Redis staying away leaves a task to its lease. Before, an agent's own
    # redis.ConnectionError did too: the task ran again after each lease and at last failed
    # with "its worker stopped responding each time", its real error never recorded.
    [task_id] = await submit(store, 1, "cache")
    async with running_worker(store, config, "tests.agents.OwnRedisDownAgent"):
        record = await finished(store, task_id)
    assert record.state.value == "failed" and record.attempts == 1
    assert record.error == "ConnectionError: Error 111 connecting to the agent's cache. Connection refused."


async def test_time_limit_fails_the_task(store, config):
    [task_id] = await submit(store, 1, "hang")
    async with running_worker(store, config.replace(task_timeout=0.3), "tests.agents.HangingAgent"):
        record = await finished(store, task_id)
    assert record.state.value == "failed" and record.error == "Task exceeded the time limit of 0.3s"


async def test_invalid_agent_event_fails_the_task(store, config):
    [task_id] = await submit(store, 1, "broken")
    async with running_worker(store, config, "tests.agents.InvalidEventAgent"):
        record = await finished(store, task_id)
    assert record.state.value == "failed"
    assert record.error.startswith("Invalid agent response: a part must have exactly one of text, raw, url, data")


async def test_cancel_of_a_running_task_is_observed_by_its_worker(store, config):
    [task_id] = await submit(store, 1, "sleep 30")
    async with running_worker(store, config):
        await in_state(store, task_id, "working")
        await store.request_cancel(task_id)
        record = await finished(store, task_id, timeout=3)
    assert record.state.value == "canceled"
    assert not await store.redis.sismember(store.keys.cancels, task_id)
    assert_clean(sync_client(store), [task_id])


async def test_worker_takes_tasks_concurrently(store, config):
    ids = await submit(store, 4, "sleep 1")
    async with running_worker(store, config.replace(worker_concurrency=4)):
        for task_id in ids:
            await in_state(store, task_id, "working", timeout=5)  # all four at once, not one after another
        for task_id in ids:
            assert (await finished(store, task_id)).state.value == "completed"


async def test_a_task_whose_end_is_being_written_frees_its_slot_for_the_next_claim(store, config, monkeypatch):
    # The next claim goes out while Redis records the last task's end, not after; but no
    # more ends than the concurrency wait at once.
    ids = await submit(store, 3, "plain text")
    written = asyncio.Event()
    finish = store.finish

    async def held_finish(*args, **kwargs):
        await written.wait()
        return await finish(*args, **kwargs)

    monkeypatch.setattr(store, "finish", held_finish)
    async with running_worker(store, config.replace(worker_concurrency=1), "echo"):
        await in_state(store, ids[1], "working")  # claimed while the first task's end is held
        assert (await store.require(ids[0])).state.value == "working"
        await asyncio.sleep(0.5)
        assert (await store.require(ids[2])).state.value == "submitted"  # two ends held: no third claim
        written.set()
        for task_id in ids:
            assert (await finished(store, task_id)).state.value == "completed"
    assert_clean(sync_client(store), ids)


async def test_an_agent_that_works_on_after_its_end_holds_its_slot_again_once_the_end_is_written(store):
    # The slot is lent only while the end's write is in flight; the updater says when it starts and when it is done.
    from queueapp.worker.updater import ClaimUpdater

    await submit(store, 2, "plain text")
    ids, _ = await store.take(2)
    done, rejected = await store.lease(ids, "w1", 30)
    told: list[bool] = []
    await ClaimUpdater(store, done, on_end_write=told.append).complete("done")
    assert told == [True, False] and (await store.require(done.record.id)).state.value == "completed"
    await store.delete(rejected.record.id)  # the write fails: the slot is still given back
    told.clear()
    with pytest.raises(TaskNotFound):
        await ClaimUpdater(store, rejected, on_end_write=told.append, write_patience=0.1).reject("no")
    assert told == [True, False]


async def test_reaper_requeues_then_fails_after_max_attempts(store, config):
    cfg = config.replace(worker_max_attempts=2)
    [task_id] = await submit(store, 1, "unlucky")
    for attempt in (1, 2):
        ids, _ = await store.take(1)
        assert ids == [task_id]
        await store.lease(ids, "dead-worker", 0.01)  # a worker that never heartbeats
        await asyncio.sleep(0.05)
        assert await reap(store, cfg) == 1
        record = await store.require(task_id)
        if attempt == 1:
            assert record.state.value == "submitted" and record.attempts == 1
            assert await store.redis.lrange(store.keys.queue, 0, -1) == [task_id]
            assert status_text(record) == "Requeued: its worker stopped responding (attempt 1 of 2)"
    assert record.state.value == "failed" and record.finished
    assert record.error == "Task failed after 2 attempts: its worker stopped responding each time"
    assert_clean(sync_client(store), [task_id])


async def test_the_reaper_puts_tasks_back_so_that_the_oldest_is_taken_first(store, config):
    ids = await submit(store, 3, "abandoned")
    taken, _ = await store.take(3)
    assert taken == ids
    await store.lease(taken, "dead-worker", 0.01)
    await asyncio.sleep(0.05)
    assert await reap(store, config) == 3
    assert (await store.take(3))[0] == ids


def reaper_that_read_before(store: QueueStore, expired: list[str]) -> QueueStore:
    """A second reaper whose read of the expired leases came before the first reaper's writes."""
    stale = QueueStore(store.redis, store.keys)

    async def as_read(limit: int = 100) -> list[str]:
        return expired

    stale.expired_leases = as_read  # type: ignore[method-assign]
    return stale


async def test_two_reapers_that_read_the_same_expired_leases_put_each_task_back_once(store, config):
    # Before: the second reaper re-read each task (now submitted, a new revision) and put it on
    # the queue again, and one worker then claimed it twice and ran it twice at once.
    ids = await submit(store, 3, "abandoned")
    await store.lease((await store.take(3))[0], "dead-worker", 0.01)
    await asyncio.sleep(0.05)
    second = reaper_that_read_before(store, await store.expired_leases())
    assert await reap(store, config) == 3
    assert await reap(second, config) == 0
    assert await store.redis.lrange(store.keys.queue, 0, -1) == list(reversed(ids))
    claims = await store.lease((await store.take(10))[0], "worker-b", 30)
    assert sorted(c.record.id for c in claims) == sorted(ids) and await store.redis.llen(store.keys.queue) == 0


@pytest.mark.parametrize("max_attempts", [3, 1])
async def test_a_reaper_that_read_an_expired_lease_leaves_the_claim_made_since_alone(store, config, max_attempts):
    # A worker claimed the task between the reaper's read and its write: its new lease is not
    # the one that ran out, so the task is neither put back nor (out of attempts) failed.
    [task_id] = await submit(store, 1, "abandoned")
    await store.lease((await store.take(1))[0], "dead-worker", 0.01)
    await asyncio.sleep(0.05)
    late = reaper_that_read_before(store, await store.expired_leases())
    assert await reap(store, config) == 1
    [claim] = await store.lease((await store.take(1))[0], "worker-b", 30)
    assert await reap(late, config.replace(worker_max_attempts=max_attempts)) == 0
    record = await store.require(task_id)
    assert record.state.value == "working" and not record.finished
    assert await store.redis.hget(store.keys.active(task_id), "token") == claim.token
    assert await store.redis.zscore(store.keys.leases, task_id) > 0
    assert await store.redis.llen(store.keys.queue) == 0


async def test_an_id_taken_twice_is_claimed_once(store):
    [task_id] = await submit(store, 1, "twice")
    await store.redis.lpush(store.keys.queue, task_id)  # on the queue twice, however that came about
    taken, _ = await store.take(2)
    assert taken == [task_id, task_id]
    assert [c.record.id for c in await store.lease(taken, "worker-a", 30)] == [task_id]


async def test_graceful_stop_finishes_short_tasks_and_requeues_long_ones(store, config, caplog):
    caplog.set_level(logging.INFO, "queueapp.worker")
    short = await submit(store, 2, "sleep 0.5")
    [long] = await submit(store, 1, "sleep 30")
    async with running_worker(store, config.replace(worker_shutdown_grace=1.5)):
        for task_id in [*short, long]:
            await in_state(store, task_id, "working")
    for task_id in short:
        assert (await store.require(task_id)).state.value == "completed"
    record = await store.require(long)
    assert record.state.value == "submitted" and not record.finished and record.attempts == 0
    assert await store.redis.lrange(store.keys.queue, 0, -1) == [long]
    assert f"Task requeued, task_id={long}, reason=worker shutdown" in caplog.text
    assert ", processed=2" in caplog.text  # the two it finished, not the one it gave back
    assert_clean(sync_client(store), [*short, long])


# ---- real runworker processes -----------------------------------------------------------------


async def test_sigkilled_worker_task_completed_by_another_after_the_lease(processes, store, redis_url):
    env = {"A2A_AGENT": "demo", "A2A_WORKER_LEASE": "2s", "A2A_WORKER_HEARTBEAT_INTERVAL": "200ms"}
    first = processes.worker(redis_url, **env)
    [task_id] = await submit(store, 1, "sleep 2")
    await in_state(store, task_id, "working")
    first.process.kill()
    first.wait()
    second = processes.worker(redis_url, **env)
    record = await finished(store, task_id, timeout=30)
    assert record.state.value == "completed" and record.attempts == 2
    assert f":{second.process.pid}:" in record.worker
    assert await store.redis.zcard(store.keys.index_history_state("completed")) == 1
    ends = [e for _, e in await store.read_events(task_id) if e.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_COMPLETED"]
    assert len(ends) == 1
    assert f"Task requeued, task_id={task_id}, reason=lease expired, attempts=1" in second.output
    assert_clean(sync_client(store), [task_id])


async def test_two_workers_process_500_tasks_exactly_once(processes, store, redis_url):
    keep_history = {"A2A_TASK_RETENTION_MAX_COMPLETED_TASKS": "100000"}
    workers = [processes.worker(redis_url, A2A_AGENT="tests.agents.CountingAgent", **keep_history) for _ in range(2)]
    await eventually(lambda: store.redis.zcard(store.keys.workers), message="workers to register")
    await eventually(lambda: _at_least(store.redis.zcard(store.keys.workers), 2), message="both workers to register")
    ids = await submit(store, 500, "0")
    for task_id in ids:
        await finished(store, task_id, timeout=120)
    runs = await store.redis.hgetall(runs_key())
    assert len(runs) == 500 and set(runs.values()) == {"1"}
    by_worker = Counter(record.worker.split(":")[1] for record in await store.get_many(ids))
    assert set(by_worker) == {str(w.process.pid) for w in workers}
    for worker in workers:
        assert worker.stop() == 0
    report = assert_clean(sync_client(store), ids)
    assert report.by_state == {"completed": 500}


async def _at_least(value, minimum: int) -> bool:
    return await value >= minimum


@pytest.mark.parametrize("grace", ["3s", "500ms"])
async def test_sigterm_finishes_within_grace_or_requeues_and_exits_zero(processes, store, redis_url, grace):
    worker = processes.worker(redis_url, A2A_AGENT="demo", A2A_WORKER_SHUTDOWN_GRACE=grace)
    [task_id] = await submit(store, 1, "sleep 1.5")
    await in_state(store, task_id, "working")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    record = await store.require(task_id)
    if grace == "3s":
        assert record.state.value == "completed"
    else:
        assert record.state.value == "submitted" and await store.redis.lrange(store.keys.queue, 0, -1) == [task_id]
        assert f"Task requeued, task_id={task_id}, reason=worker shutdown" in worker.output
    assert "Worker stopped" in worker.output
    assert_clean(sync_client(store), [task_id])


async def test_input_required_task_continues_on_the_worker(store, config):
    [task_id] = await submit(store, 1, "ask favourite colour?")
    async with running_worker(store, config):
        record = await in_state(store, task_id, "input-required")
        assert status_text(record) == "favourite colour?"
        await store.continue_task(task_id, user_message("green"))
        record = await finished(store, task_id)
    assert record.state.value == "completed" and status_text(record) == "Thanks, got your answer: green"


async def test_the_context_history_is_read_only_for_agents_that_use_it(store):
    from queueapp.agents.echo import EchoAgent
    from queueapp.agents.llm import LLMAgent
    from queueapp.worker.runner import build_context

    first, _ = await store.create_task(user_message("earlier question"), context_id="conversation")
    second, _ = await store.create_task(user_message("follow-up"), context_id="conversation")
    ids, _ = await store.take(2)
    claim = next(c for c in await store.lease(ids, "w1", 30) if c.record.id == second.id)
    reading = await build_context(store, claim, asyncio.Event(), LLMAgent())
    assert [m["parts"][0]["text"] for m in reading.context_history] == ["earlier question"]
    assert reading.text == "follow-up"
    assert EchoAgent.reads_context_history is False
    skipping = await build_context(store, claim, asyncio.Event(), EchoAgent())
    assert skipping.context_history == [] and skipping.text == "follow-up"


async def test_a_sigkilled_worker_is_pruned_and_no_task_is_listed_on_two_workers(processes, store, redis_url):
    env = {"A2A_AGENT": "demo", "A2A_WORKER_LEASE": "2s", "A2A_WORKER_HEARTBEAT_INTERVAL": "200ms"}
    workers = [processes.worker(redis_url, **env) for _ in range(2)]
    await eventually(lambda: _at_least(store.redis.zcard(store.keys.workers), 2), message="both workers to register")
    [task_id] = await submit(store, 1, "sleep 6")
    first_holder = (await in_state(store, task_id, "working")).worker
    [victim] = [w for w in workers if f":{w.process.pid}:" in first_holder]
    [survivor] = [w for w in workers if w is not victim]
    victim.process.kill()
    victim.wait()

    async def listed_on() -> list[str]:
        return [w["id"] for w in (await store.stats(minutes=1)).workers if task_id in w.get("tasks", [])]

    async def taken_over() -> bool:
        record = await store.get(task_id)
        assert len(await listed_on()) <= 1  # never on two workers, all through the take-over
        return record is not None and record.worker and f":{survivor.process.pid}:" in record.worker and record.state.value == "working"

    await eventually(taken_over, timeout=20, interval=0.02, message="the survivor to take the task over")
    await eventually(lambda: _forgotten(store, first_holder), timeout=10, message="the dead worker to be pruned")
    [live] = (await store.stats(minutes=1)).workers
    assert f":{survivor.process.pid}:" in live["id"]
    await eventually(lambda: _listed_once(listed_on, live["id"]), timeout=5, message="the task listed under the survivor")
    assert not await store.redis.exists(store.keys.worker(first_holder))
    assert "Worker pruned: no heartbeat within the lease" in survivor.output


async def _forgotten(store: QueueStore, dead_id: str) -> bool:
    return await store.redis.zscore(store.keys.workers, dead_id) is None


async def _listed_once(listed_on, worker_id: str) -> bool:
    return await listed_on() == [worker_id]


async def test_an_idle_worker_waits_for_tasks_within_the_socket_timeout(config, caplog):
    # Before, its BLMOVE blocked 1 s whatever A2A_QUEUE_OPTIONS_TIMEOUT said: with a timeout of
    # 1 s or less each wait on an empty queue was cut as an outage, logged "Redis unavailable",
    # and the backoff that followed delayed the next task by seconds.
    caplog.set_level(logging.WARNING, "queueapp.worker")
    client = aioredis.Redis.from_url(config.queue_url, decode_responses=True, socket_timeout=0.5)
    store = QueueStore.from_config(client, config)
    try:
        async with running_worker(store, config, agent="echo"):  # the client's timeout counts, not the setting's
            await asyncio.sleep(2.5)
            [task_id] = await submit(store, 1, "hi")
            await eventually(lambda: store.redis.hget(store.keys.deadletter(task_id), "state"), timeout=1.5, message="the task to be done at once")
        assert "Redis unavailable" not in caplog.text
    finally:
        await client.aclose()


async def test_a_running_task_is_canceled_with_the_reason_its_canceller_gave(store, config):
    # Before, a running task's worker ended it with "Canceled by request" whatever the caller
    # said (the dashboard says "Canceled from the dashboard"): only a waiting task kept it.
    [task_id] = await submit(store, 1, "sleep 30")
    async with running_worker(store, config):
        await in_state(store, task_id, "working")
        await store.request_cancel(task_id, "Canceled from the dashboard")
        record = await in_state(store, task_id, "canceled")
    assert status_text(record) == "Canceled from the dashboard"
    assert "cancel_reason" not in await store.redis.hgetall(store.keys.deadletter(task_id))
    assert_clean(sync_client(store), [task_id])
