"""The data model and its transitions, checked key by key.

Each test runs on a real Redis and on fakeredis (which runs the same Lua scripts), so the
fast unit run and the integration run prove the same thing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from queueapp import histogram, model
from queueapp.states import FINISHED, TaskState
from queueapp.store import Conflict, InvalidTransition, QueueStore, TaskNotCancelable, TaskNotFound
from queueapp.worker.updater import ClaimUpdater
from tests.faults.tools import user_message


@pytest.fixture(params=["redis", "fakeredis"])
def any_store(request) -> QueueStore:
    return request.getfixturevalue("store" if request.param == "redis" else "fake_store")


async def create(store: QueueStore, text: str = "hello", **kwargs):
    record, created = await store.create_task(user_message(text), **kwargs)
    assert created
    return record


async def claim_one(store: QueueStore, worker_id: str = "w1", lease: float = 30):
    ids, _ = await store.take(1)
    claims = await store.lease(ids, worker_id, lease)
    assert len(claims) == 1
    return claims[0]


async def finish_as(store: QueueStore, state: TaskState, text: str = "done"):
    record = await create(store)
    claim = await claim_one(store)
    updater = ClaimUpdater(store, claim)
    await updater.working("on it")
    ending = {
        TaskState.COMPLETED: updater.complete,
        TaskState.FAILED: updater.fail,
        TaskState.CANCELED: updater.cancel,
        TaskState.REJECTED: updater.reject,
    }[state]
    await ending(text)
    return record


# ---- create / enqueue --------------------------------------------------------------------


async def test_create_writes_every_documented_key(any_store, caplog):
    r, k = any_store.redis, any_store.keys
    caplog.set_level(logging.INFO, "queueapp.store")
    record = await create(any_store, "first", context_id="ctx-1")

    stored = await r.hgetall(f"a2a:active:{record.id}")
    assert stored["state"] == "submitted"
    assert stored["context_id"] == "ctx-1"
    assert stored["attempts"] == "0"
    task = json.loads(stored["task"])  # the stored form leaves out the ids the record already has
    assert task["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert task["history"][0]["parts"] == [{"text": "first"}]
    assert (await any_store.get(record.id)).task == record.task
    assert await r.lrange("a2a:queue", 0, -1) == [record.id]
    assert await r.smembers("a2a:context:ctx-1") == {record.id}
    assert not await r.exists(f"a2a:deadletter:{record.id}")
    for index in (k.index_active, k.index_context("ctx-1")):
        assert await r.zscore(index, record.id) is not None, index
    assert await r.zscore(k.contexts, "ctx-1") is not None
    assert (await r.hgetall(k.counts))["submitted"] == "1"
    events = await any_store.read_events(record.id)
    assert [list(e) for _, e in events] == [["task"]]
    assert f"Task enqueued for processing, task_id={record.id}, queue_length=1" in caplog.text


async def test_every_change_publishes_a_notice(any_store):
    pubsub = any_store.redis.pubsub()
    await pubsub.subscribe("a2a:queue:notify")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    record = await create(any_store, context_id="ctx-n")
    await any_store.request_cancel(record.id)
    notices = []
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message:
            notices.append(json.loads(message["data"]))
        if len(notices) == 2:
            break
    await pubsub.aclose()
    assert [(n["task_id"], n["state"], n["context_id"]) for n in notices] == [(record.id, "submitted", "ctx-n"), (record.id, "canceled", "ctx-n")]
    assert notices[0]["queue_length"] == 1 and notices[1]["queue_length"] == 0


async def test_fifo_order(any_store):
    ids = [(await create(any_store, f"task {i}")).id for i in range(6)]
    taken, left = await any_store.take(2)
    assert taken == ids[:2] and left == 4
    one_by_one = [await any_store.wait_take(0.1) for _ in range(4)]
    assert one_by_one == ids[2:]
    assert await any_store.wait_take(0.1) is None
    page = await any_store.queue_page()
    assert page.items == [] and page.total == 0


async def test_queue_page_lists_in_the_order_tasks_will_be_taken(any_store):
    ids = [(await create(any_store, f"task {i}")).id for i in range(5)]
    page = await any_store.queue_page(0, 3)
    assert [r.id for r in page.items] == ids[:3] and page.total == 5 and page.next_cursor == "3"
    rest = await any_store.queue_page(3, 3)
    assert [r.id for r in rest.items] == ids[3:] and rest.next_cursor == ""


async def test_message_id_is_idempotent_within_a_context(any_store):
    first, created = await any_store.create_task(user_message("once", "m-1"), context_id="ctx-a")
    again, created_again = await any_store.create_task(user_message("once", "m-1"), context_id="ctx-a")
    other, created_other = await any_store.create_task(user_message("once", "m-1"), context_id="ctx-b")
    assert created and not created_again and created_other
    assert again.id == first.id and other.id != first.id
    assert await any_store.redis.llen("a2a:queue") == 2


async def test_message_id_of_a_deleted_task_creates_a_new_one(any_store):
    first, _ = await any_store.create_task(user_message("x", "m-2"), context_id="ctx")
    await any_store.request_cancel(first.id)
    await any_store.delete(first.id)
    second, created = await any_store.create_task(user_message("x", "m-2"), context_id="ctx")
    assert created and second.id != first.id


async def test_a_taken_task_id_is_refused(any_store):
    record = await create(any_store)
    with pytest.raises(Conflict):
        await any_store.create_task(user_message("again"), task_id=record.id)
    assert await any_store.redis.llen("a2a:queue") == 1


# ---- claim, update, release -----------------------------------------------------------------


async def test_take_and_lease(any_store):
    r, k = any_store.redis, any_store.keys
    record = await create(any_store)
    ids, left = await any_store.take(5)
    assert ids == [record.id] and left == 0
    assert await r.lrange(k.processing, 0, -1) == [record.id]
    before = model.now_ms()
    claims = await any_store.lease(ids, "worker-a", 30)
    assert [c.record.id for c in claims] == [record.id]
    assert claims[0].record.attempts == 1
    stored = await r.hgetall(k.active(record.id))
    assert stored["token"] == claims[0].token and stored["worker"] == "worker-a" and stored["attempts"] == "1"
    # The claim marks the task working, in the record, the counts and the task's events.
    assert stored["state"] == "working" and int(stored["started_ms"]) >= before
    assert claims[0].record.state is TaskState.WORKING and (await any_store.get(record.id)).task == claims[0].record.task
    assert claims[0].record.task["status"]["state"] == "TASK_STATE_WORKING"
    counts = await r.hgetall(k.counts)
    assert counts["working"] == "1" and counts["submitted"] == "0"
    events = [e for _, e in await any_store.read_events(record.id)]
    assert events[-1] == model.status_event(claims[0].record.task)
    assert await r.lrange(k.processing, 0, -1) == []
    assert await r.zscore(k.leases, record.id) >= before + 29_000


async def test_lease_skips_ids_whose_task_is_gone_or_not_waiting(any_store):
    record = await create(any_store)
    await any_store.take(1)
    await any_store.request_cancel(record.id)  # canceled while sitting in processing
    assert await any_store.lease([record.id], "w", 30) == []
    assert await any_store.redis.llen(any_store.keys.processing) == 0


async def test_worker_updates_are_guarded_by_the_claim_token(any_store):
    r, k = any_store.redis, any_store.keys
    await create(any_store)
    claim = await claim_one(any_store)
    updater = ClaimUpdater(any_store, claim)
    await updater.working("halfway", progress=0.5)
    await updater.artifact([{"text": "part one"}], name="out")
    stored = await r.hgetall(k.active(claim.record.id))
    assert stored["state"] == "working" and stored["progress"] == "0.5"
    assert json.loads(stored["task"])["artifacts"][0]["parts"] == [{"text": "part one"}]
    counts = await r.hgetall(k.counts)
    assert counts["working"] == "1" and counts["submitted"] == "0"
    kinds = [next(iter(e)) for _, e in await any_store.read_events(claim.record.id)]
    assert kinds == ["task", "statusUpdate", "statusUpdate", "artifactUpdate"]  # claimed, then the agent's report

    claim.token = "someone-else"
    with pytest.raises(Conflict):
        await ClaimUpdater(any_store, claim).working("stale writer")
    assert json.loads((await r.hgetall(k.active(claim.record.id)))["task"])["status"]["message"]["parts"] == [{"text": "halfway"}]


async def test_release_to_input_required_then_continue(any_store):
    r, k = any_store.redis, any_store.keys
    await create(any_store, "ask what colour")
    claim = await claim_one(any_store)
    await ClaimUpdater(any_store, claim).require_input("Which colour?")
    task_id = claim.record.id
    stored = await r.hgetall(k.active(task_id))
    assert stored["state"] == "input-required" and "token" not in stored
    assert await r.zscore(k.leases, task_id) is None
    assert await r.llen(k.queue) == 0

    record = await any_store.continue_task(task_id, user_message("blue"))
    assert record.state is TaskState.SUBMITTED
    assert await r.lrange(k.queue, 0, -1) == [task_id]
    history = (await any_store.get(task_id)).task["history"]
    assert [m["role"] for m in history] == ["ROLE_USER", "ROLE_AGENT", "ROLE_USER"]
    assert history[-1]["taskId"] == task_id


async def test_continue_refuses_a_task_not_waiting_for_input(any_store):
    record = await create(any_store)
    with pytest.raises(InvalidTransition):
        await any_store.continue_task(record.id, user_message("more"))
    finished = await finish_as(any_store, TaskState.COMPLETED)
    with pytest.raises(InvalidTransition):
        await any_store.continue_task(finished.id, user_message("more"))
    with pytest.raises(TaskNotFound):
        await any_store.continue_task("no-such-task", user_message("more"))


# ---- finish -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED])
async def test_finish_moves_the_task_to_the_history(any_store, state):
    r, k = any_store.redis, any_store.keys
    record = await finish_as(any_store, state, "the end")
    task_id = record.id
    assert not await r.exists(k.active(task_id))
    stored = await r.hgetall(k.deadletter(task_id))
    # The history hash keeps four fields; the rest of the bookkeeping is one JSON field.
    assert set(stored) == {"state", "context_id", "task", "meta"}  # and identity, with auth on
    meta = json.loads(stored["meta"])
    assert stored["state"] == state.value and "token" not in meta and int(meta["finished_ms"]) > 0
    assert json.loads(stored["task"])["status"]["state"] == state.v1
    if state is TaskState.FAILED:
        assert meta["error"] == "the end"
    assert await r.zscore(k.index_active, task_id) is None
    assert [s.value for s in FINISHED if await r.zscore(k.index_history_state(s.value), task_id) is not None] == [state.value]
    assert await r.zscore(k.index_history_state(state.value), task_id) is not None
    assert await r.zscore(k.leases, task_id) is None
    assert await r.smembers(k.context(record.context_id)) == {task_id}
    counts = await r.hgetall(k.counts)
    assert counts[state.value] == "1" and counts["working"] == "0" and counts[f"total_{state.value}"] == "1"
    assert await r.pttl(k.events(task_id)) > 0
    stats = await any_store.stats()
    assert stats.by_state[state.value] == 1 and stats.active == 0
    if state in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED):
        assert stats.per_minute[-1][state.value] == 1


async def test_a_finished_task_cannot_be_written_by_its_old_worker(any_store):
    await create(any_store)
    claim = await claim_one(any_store)
    await ClaimUpdater(any_store, claim).complete("done")
    with pytest.raises(TaskNotFound):
        await ClaimUpdater(any_store, claim).fail("too late")
    assert (await any_store.require(claim.record.id)).state is TaskState.COMPLETED


# ---- cancel --------------------------------------------------------------------------------


async def test_cancel_waiting_task_leaves_the_queue_at_once(any_store):
    r, k = any_store.redis, any_store.keys
    keep = await create(any_store, "keep")
    record = await create(any_store, "drop")
    canceled = await any_store.request_cancel(record.id)
    assert canceled.state is TaskState.CANCELED and canceled.finished
    assert await r.lrange(k.queue, 0, -1) == [keep.id]
    assert (await r.hgetall(k.deadletter(record.id)))["state"] == "canceled"
    with pytest.raises(TaskNotCancelable):
        await any_store.request_cancel(record.id)
    with pytest.raises(TaskNotFound):
        await any_store.request_cancel("no-such-task")


async def test_cancel_running_task_flags_it_for_its_worker(any_store):
    await create(any_store)
    claim = await claim_one(any_store)
    record = await any_store.request_cancel(claim.record.id)
    assert record.state is TaskState.WORKING and not record.finished  # still running until its worker stops
    lost, cancel = await any_store.heartbeat("w1", {}, [claim], 30)
    assert lost == [] and cancel == [claim.record.id]
    forced = await any_store.force_cancel(claim.record.id)
    assert forced.state is TaskState.CANCELED
    assert not await any_store.redis.sismember(any_store.keys.cancels, claim.record.id)


async def test_cancel_of_a_task_whose_worker_finished_it_meanwhile_is_refused_and_leaves_no_flag(any_store, monkeypatch):
    await create(any_store)
    claim = await claim_one(any_store)
    stale = await any_store.require(claim.record.id)  # read while it runs...
    await ClaimUpdater(any_store, claim).complete("done")  # ...and its worker finishes it
    reads = iter([stale])
    real_require = any_store.require

    async def require(task_id):
        return next(reads, None) or await real_require(task_id)

    monkeypatch.setattr(any_store, "require", require)
    with pytest.raises(TaskNotCancelable):
        await any_store.request_cancel(claim.record.id)
    assert not await any_store.redis.sismember(any_store.keys.cancels, claim.record.id)
    assert (await real_require(claim.record.id)).state is TaskState.COMPLETED


# ---- retry, delete, pause --------------------------------------------------------------------


async def test_retry_puts_a_finished_task_back_on_the_queue(any_store):
    r, k = any_store.redis, any_store.keys
    record = await finish_as(any_store, TaskState.FAILED, "boom")
    retried = await any_store.retry(record.id)
    assert retried.state is TaskState.SUBMITTED and not retried.finished and retried.attempts == 0
    assert await r.lrange(k.queue, 0, -1) == [record.id]
    assert not await r.exists(k.deadletter(record.id))
    assert await r.zscore(k.index_history_state("failed"), record.id) is None
    assert await r.zscore(k.index_active, record.id) is not None
    assert "error" not in await r.hgetall(k.active(record.id))
    counts = await r.hgetall(k.counts)
    assert counts["failed"] == "0" and counts["submitted"] == "1"
    with pytest.raises(InvalidTransition):
        await any_store.retry(record.id)


async def test_delete_removes_every_trace(any_store):
    r = any_store.redis
    record = await finish_as(any_store, TaskState.COMPLETED)
    other = await create(any_store, context_id="shared")
    assert await any_store.delete(record.id) is TaskState.COMPLETED
    for key in await r.keys("a2a:*"):
        kind = await r.type(key)
        members = {
            "list": lambda key=key: r.lrange(key, 0, -1),
            "set": lambda key=key: r.smembers(key),
            "zset": lambda key=key: r.zrange(key, 0, -1),
            "hash": lambda key=key: r.hkeys(key),
        }.get(kind)
        assert record.id not in key
        if members:
            assert record.id not in await members(), key
    assert await any_store.get(record.id) is None
    assert await any_store.get(other.id) is not None
    with pytest.raises(TaskNotFound):
        await any_store.delete(record.id)


async def test_delete_of_unfinished_task_can_be_refused(any_store):
    record = await create(any_store)
    with pytest.raises(InvalidTransition):
        await any_store.delete(record.id, only_finished=True)
    assert await any_store.redis.lrange("a2a:queue", 0, -1) == [record.id]
    await any_store.delete(record.id)
    assert await any_store.redis.llen("a2a:queue") == 0
    assert (await any_store.stats()).by_state["submitted"] == 0


async def test_pause_stops_claims_until_resumed(any_store):
    record = await create(any_store)
    await any_store.pause(True)
    assert await any_store.is_paused()
    assert await any_store.take(5) == ([], -1)
    assert (await any_store.stats()).paused
    await any_store.pause(False)
    assert await any_store.take(5) == ([record.id], 0)


async def test_a_lease_after_a_pause_claims_nothing_and_gives_the_ids_back_in_order(any_store):
    first, second = await create(any_store, "first"), await create(any_store, "second")
    ids, _ = await any_store.take(2)
    assert ids == [first.id, second.id]
    await any_store.pause(True)  # paused between the take (a BLMOVE, say) and the lease
    assert await any_store.lease(ids, "w1", 30) == []
    assert await any_store.redis.llen(any_store.keys.processing) == 0
    assert (await any_store.get(first.id)).state is TaskState.SUBMITTED
    await any_store.pause(False)
    assert (await any_store.take(2))[0] == [first.id, second.id]


async def test_pause_and_resume_publish_notices_of_the_common_shape(any_store):
    await create(any_store)
    pubsub = any_store.redis.pubsub()
    await pubsub.subscribe("a2a:queue:notify")
    await pubsub.get_message(timeout=1)
    await any_store.pause(True)
    await any_store.pause(False)
    notices = []
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message:
            notices.append(json.loads(message["data"]))
        if len(notices) == 2:
            break
    await pubsub.aclose()
    assert [n["event"] for n in notices] == ["paused", "resumed"]
    assert all(n.keys() == {"task_id", "context_id", "state", "queue_length", "event"} and n["queue_length"] == 1 for n in notices)


# ---- recovery ------------------------------------------------------------------------------


async def test_ids_stranded_in_processing_go_back_to_the_queue_after_the_grace(any_store):
    record = await create(any_store)
    await any_store.take(1)  # a worker took it and died before leasing it
    assert await any_store.recover_processing(0.05) == []  # first sighting
    await asyncio.sleep(0.1)
    assert await any_store.recover_processing(0.05) == [record.id]
    assert await any_store.redis.lrange("a2a:queue", 0, -1) == [record.id]
    assert await any_store.redis.llen(any_store.keys.processing) == 0


async def test_heartbeat_reports_a_lease_taken_over(any_store):
    await create(any_store)
    claim = await claim_one(any_store, lease=30)
    stale = type(claim)(claim.record, "old-token", "w1")
    lost, _ = await any_store.heartbeat("w1", {"pid": 1}, [stale], 30)
    assert lost == [claim.record.id]
    stats = await any_store.stats()
    assert [w["id"] for w in stats.workers] == ["w1"] and stats.workers[0]["pid"] == 1
    await any_store.remove_worker("w1")
    assert (await any_store.stats()).workers == []


# ---- lists and stats ----------------------------------------------------------------------


async def test_list_tasks_newest_first_with_cursor(any_store):
    ids = []
    for i in range(7):
        ids.append((await create(any_store, f"t{i}", context_id="c1" if i % 2 else "c2")).id)  # often in one ms: still in order
    seen, cursor = [], ""
    while True:
        page = await any_store.list_tasks(limit=3, cursor=cursor)
        assert page.total == 7
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == list(reversed(ids))
    in_c1 = await any_store.list_tasks(context_id="c1")
    assert [r.id for r in in_c1.items] == [ids[5], ids[3], ids[1]]


async def test_list_tasks_merges_waiting_and_finished_tasks_page_by_page(any_store):
    finished = []
    for state in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.COMPLETED):
        finished.append(await finish_as(any_store, state))  # the history is in finish order, even within one ms
    # Created in one go, so several share a millisecond: the cursor must break those ties.
    waiting = await asyncio.gather(*(create(any_store, f"w{i}") for i in range(9)))
    expected = {r.id for r in [*finished, *waiting]}
    seen, cursor, scores = [], "", []
    while True:
        page = await any_store.list_tasks(limit=4, cursor=cursor)
        assert page.total == len(expected)
        seen += [r.id for r in page.items]
        scores += [(r.updated_ms, r.id) for r in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    assert [ms for ms, _ in scores] == sorted((ms for ms, _ in scores), reverse=True)
    history = await any_store.history(limit=3)
    assert history.total == 4 and [r.id for r in history.items] == [r.id for r in reversed(finished)][:3]
    rest = await any_store.history(limit=3, cursor=history.next_cursor)
    assert [r.id for r in rest.items] == [finished[0].id] and rest.next_cursor == ""


async def test_tasks_of_one_millisecond_list_in_the_order_they_happened(any_store, monkeypatch):
    monkeypatch.setattr(model, "now_ms", lambda: 1_800_000_000_000)  # every write in the same ms
    finished = [await finish_as(any_store, TaskState.CANCELED) for _ in range(7)]
    seen, cursor = [], ""
    while True:
        page = await any_store.history(limit=2, cursor=cursor)
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [r.id for r in reversed(finished)]  # newest first, none twice, none lost
    scores = await any_store.redis.zrange(any_store.keys.index_history_state("canceled"), 0, -1, withscores=True)
    assert len({s for _, s in scores}) == 7 and all(int(s) == 1_800_000_000_000 for _, s in scores)


async def test_a_writer_whose_clock_is_behind_never_ties_a_score(any_store, monkeypatch):
    clocks = iter([1_800_000_000_005, 1_800_000_000_003, 1_800_000_000_003, 1_800_000_000_005])
    monkeypatch.setattr(model, "now_ms", lambda: next(clocks))
    for i in range(4):
        await create(any_store, f"t{i}")
    scores = [s for _, s in await any_store.redis.zrange(any_store.keys.index_active, 0, -1, withscores=True)]
    assert len(set(scores)) == 4 and sorted(int(s) for s in scores) == [1_800_000_000_003] * 2 + [1_800_000_000_005] * 2


async def test_finished_tasks_feed_per_minute_histograms_of_wait_and_run_time(any_store, monkeypatch):
    clock = [1_800_000_000_000]
    monkeypatch.setattr(model, "now_ms", lambda: clock[0])
    for run_ms in [1000] * 18 + [20_000] * 2:
        await create(any_store)
        clock[0] += 100  # waits 100 ms in the queue
        claim = await claim_one(any_store)
        clock[0] += run_ms
        await ClaimUpdater(any_store, claim).complete("ok")
    minutes = (await any_store.stats(minutes=10)).per_minute
    waits = histogram.merge(m["wait_buckets"] for m in minutes)
    runs = histogram.merge(m["run_buckets"] for m in minutes)
    assert sum(waits.values()) == sum(runs.values()) == 20
    assert abs(histogram.percentile(waits, 0.5) - 100) <= 10
    assert abs(histogram.percentile(runs, 0.5) - 1000) <= 100 and abs(histogram.percentile(runs, 0.95) - 20_000) <= 2000
    row = await any_store.redis.hgetall(any_store.keys.stats_minute(clock[0] // 60000))
    assert len([f for f in row if f.startswith(("wb:", "rb:"))]) <= 3  # only the buckets used are stored


@pytest.mark.parametrize("state", list(FINISHED))
async def test_every_finished_state_is_counted_per_minute(any_store, state):
    await finish_as(any_store, state)
    minutes = (await any_store.stats(minutes=2)).per_minute
    assert sum(m[state.value] for m in minutes) == sum(m["finished"] for m in minutes) == 1
    assert sum(sum(m["run_buckets"].values()) for m in minutes) == 1  # the time measured is the task counted


def test_lua_scripts_spell_no_state_and_get_the_states_from_states_py():
    # A state spelled in a script would drift from states.py; the scripts use STATE.* and FINISHED.
    from queueapp.store import scripts

    for script in scripts.ALL:
        body = script.body
        assert not [s for s in TaskState if f"'{s.value}'" in body], script.name
    assert "FINISHED = {'completed', 'failed', 'canceled', 'rejected'}" in scripts.DELETE.source


@pytest.mark.parametrize("name", [s.name for s in __import__("queueapp.store.scripts").store.scripts.ALL])
def test_each_script_reads_exactly_the_keys_and_args_its_declaration_names(name):
    # KEYS and ARGV are declared once (queueapp/store/scripts.py); the Lua reads them by name.
    # A name the script reads but the declaration lacks (or the reverse), or a position
    # counted by hand, fails here rather than in production.
    from queueapp.store import scripts

    script = next(s for s in scripts.ALL if s.name == name)
    body = script.body
    assert not re.findall(r"\b(?:KEYS|ARGV)\[", body)
    assert set(re.findall(r"\bK\.(\w+)", body)) == {f.name for f in script.key_fields}
    assert set(re.findall(r"\bA\.(\w+)", body)) == {f.name for f in script.arg_fields}
    item_keys, item_args = ({f.name for f in fields} for fields in (script.item_key_fields, script.item_arg_fields))
    assert set(re.findall(r"\bkeys\.(\w+)|\bkey\.(\w+)", body)) <= {(n, "") for n in item_keys} | {("", n) for n in item_keys}
    assert set(re.findall(r"\b(?:claim|item_arg)\.(\w+)", body)) == item_args
    assert ("REST" in body) == script.rest


def test_a_script_call_with_a_missing_or_unknown_name_is_refused():
    from queueapp.store import scripts

    keys = {"queue": "q", "processing": "p", "paused": "x"}
    assert scripts.TAKE.flatten(keys, {"count": 3}) == (["q", "p", "x"], [3])
    with pytest.raises(TypeError, match="missing \\['paused'\\]"):
        scripts.TAKE.flatten({"queue": "q", "processing": "p"}, {"count": 3})  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="unknown \\['limit'\\]"):
        scripts.TAKE.flatten(keys, {"count": 3, "limit": 1})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(TypeError, match="history_indexes needs 4 keys"):
        scripts.RETRY.flatten({**dict.fromkeys(scripts.RetryKeys.__annotations__, "k"), "history_indexes": ["a"]}, {})  # type: ignore[arg-type]


async def test_a_retried_task_gets_its_bookkeeping_back(any_store):
    r, k = any_store.redis, any_store.keys
    record = await finish_as(any_store, TaskState.FAILED, "boom")
    before = await any_store.get(record.id)
    retried = await any_store.retry(record.id)
    stored = await r.hgetall(k.active(record.id))
    assert "meta" not in stored and stored["created_ms"] == str(before.created_ms)
    assert int(stored["rev"]) == int(before.rev) + 1 and retried.created_ms == before.created_ms
    assert retried.task["history"] == before.task["history"]


async def test_list_tasks_by_state(any_store):
    done = await finish_as(any_store, TaskState.COMPLETED)
    failed = await finish_as(any_store, TaskState.FAILED)
    waiting = await create(any_store)
    assert [r.id for r in (await any_store.list_tasks(state=TaskState.COMPLETED)).items] == [done.id]
    assert [r.id for r in (await any_store.list_tasks(state=TaskState.FAILED)).items] == [failed.id]
    submitted = await any_store.list_tasks(state=TaskState.SUBMITTED)
    assert [r.id for r in submitted.items] == [waiting.id] and submitted.total == 1
    assert [r.id for r in (await any_store.history()).items] == [failed.id, done.id]
    assert [r.id for r in (await any_store.active_tasks()).items] == [waiting.id]


async def test_contexts_and_their_history(any_store):
    await create(any_store, "one", context_id="conv")
    await create(any_store, "two", context_id="conv")
    await create(any_store, "elsewhere", context_id="other")
    page = await any_store.list_contexts()
    assert page.total == 2
    assert {c["context_id"]: c["task_count"] for c in page.items} == {"conv": 2, "other": 1}
    texts = [model.message_text(m) for m in await any_store.context_history("conv")]
    assert texts == ["one", "two"]


async def test_a_resent_lease_returns_the_same_claim(any_store):
    """A claim whose reply was lost on a dropped connection is resent as is: it must not strand the task."""
    k = any_store.keys
    record = await create(any_store)
    await any_store.take(1)
    first = await any_store.lease([record.id], "w1", 30, {record.id: "token-1"})
    again = await any_store.lease([record.id], "w1", 30, {record.id: "token-1"})
    assert [(c.record.id, c.record.rev, c.record.attempts, c.record.task) for c in again] == [
        (c.record.id, c.record.rev, c.record.attempts, c.record.task) for c in first
    ]
    assert len(first) == 1 and first[0].record.attempts == 1
    assert (await any_store.redis.hgetall(k.active(record.id)))["attempts"] == "1"
    working = [e for _, e in await any_store.read_events(record.id) if "statusUpdate" in e]
    assert len(working) == 1  # the resend recorded nothing twice
    other = await any_store.lease([record.id], "w1", 30, {record.id: "token-2"})
    assert other == []  # someone else's claim is still refused


async def test_workers_silent_for_longer_than_the_lease_are_pruned_and_not_listed(any_store):

    any_store.worker_lease = 5
    await any_store.heartbeat("alive", {"pid": 1, "tasks": []}, [], 5)
    await any_store.heartbeat("dead", {"pid": 2, "tasks": []}, [], 5)
    await any_store.redis.zadd(any_store.keys.workers, {"dead": model.now_ms() - 6000})  # its last heartbeat, 6 s ago
    assert [w["id"] for w in (await any_store.stats()).workers] == ["alive"]
    assert await any_store.prune_dead_workers(5) == ["dead"]
    assert await any_store.redis.zrange(any_store.keys.workers, 0, -1) == ["alive"]
    assert not await any_store.redis.exists(any_store.keys.worker("dead"))


async def test_a_task_is_listed_only_under_the_worker_holding_its_claim(any_store):
    record = await create(any_store)
    claim = await claim_one(any_store, lease=30)
    await any_store.heartbeat(claim.worker_id, {"tasks": [record.id]}, [claim], 30)
    await any_store.heartbeat("lost-it", {"tasks": [record.id]}, [], 30)  # has not noticed yet
    listed = {w["id"]: w["tasks"] for w in (await any_store.stats()).workers}
    assert listed == {claim.worker_id: [record.id], "lost-it": []}
