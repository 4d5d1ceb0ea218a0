"""The data model and its transitions, checked key by key.

Each test runs on a real Redis and on fakeredis (which runs the same Lua scripts), so the
fast unit run and the integration run prove the same thing.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import redis

from queueapp.model import TaskRecord
from queueapp.states import FINISHED, TaskState
from queueapp.store import Conflict, ContextNotAvailable, InvalidTransition, StoreError, TaskNotCancelable, TaskNotFound
from queueapp.worker.updater import ClaimUpdater, OutageTooLong
from tests.faults.tools import user_message
from tests.store_support import claim_one, create, finish_as, notices_heard


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
    assert await r.zrange("a2a:idx:context:ctx-1", 0, -1) == [record.id]
    assert not await r.exists("a2a:context:ctx-1")  # what earlier versions kept beside the index
    assert not await r.exists(f"a2a:deadletter:{record.id}")
    for index in (k.index_active, k.index_context("ctx-1")):
        assert await r.zscore(index, record.id) is not None, index
    assert await r.zscore(k.contexts, "ctx-1") is not None
    assert (await r.hgetall(k.counts))["submitted"] == "1"
    events = await any_store.read_events(record.id)
    assert [list(e) for _, e in events] == [["task"]]
    assert f"Task enqueued for processing, task_id={record.id}, queue_length=1" in caplog.text


async def test_creates_asked_for_together_go_in_one_call_and_each_gets_its_own_answer(any_store):
    r, k = any_store.redis, any_store.keys
    taken = await create(any_store, context_id="alices", identity="alice")
    pubsub = r.pubsub()
    await pubsub.subscribe(k.notify)
    await pubsub.get_message(timeout=1)
    repeated = {**user_message("again"), "messageId": "m-1"}
    outcomes = await asyncio.gather(
        any_store.create_task(user_message("one"), context_id="new", identity="alice"),
        any_store.create_task(user_message("not hers"), context_id="new", identity="bob"),  # the context the first just started
        any_store.create_task(repeated, context_id="new", identity="alice"),
        any_store.create_task(repeated, context_id="new", identity="alice"),  # the same message id, in the same call
        any_store.create_task(user_message("taken"), task_id=taken.id, context_id="alices", identity="alice"),
        any_store.create_task(user_message("two"), trace="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        return_exceptions=True,
    )
    (first, new_first), refused, (second, new_second), (again, new_again), conflict, (third, new_third) = outcomes
    assert isinstance(refused, ContextNotAvailable) and isinstance(conflict, Conflict)
    assert new_first and new_second and new_third and not new_again and again.id == second.id
    # The queue is as one create after another leaves it: the first created is taken first.
    assert await r.lrange(k.queue, 0, -1) == [third.id, second.id, first.id, taken.id]
    assert (await any_store.take(4))[0] == [taken.id, first.id, second.id, third.id]
    assert await r.zrange(k.index_context("new"), 0, -1) == sorted([first.id, second.id])
    assert await r.hgetall(k.context_owners) == {"alices": "alice", "new": "alice"}
    assert (await r.hgetall(k.counts))["submitted"] == "4"
    assert {third.context_id, "new", "alices"} == set(await r.zrange(k.contexts, 0, -1))
    assert await r.zcard(k.index_active) == 4 and await r.zcard(k.index_owner_active("alice")) == 3
    assert (await r.hget(k.active(third.id), "trace")).startswith("00-0af7651916cd43dd")
    assert await r.hget(k.active(first.id), "identity") == "alice" and await r.hget(k.active(third.id), "identity") is None
    # One call: one message naming the three created tasks, with the queue length of the end.
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
    await pubsub.aclose()
    assert [(n["task_id"], n["event"], n["state"], n["queue_length"]) for n in json.loads(message["data"])] == [
        (first.id, "created", "submitted", 4),
        (second.id, "created", "submitted", 4),
        (third.id, "created", "submitted", 4),
    ]


@pytest.mark.parametrize("damaged", ["events", "owner index"])
async def test_a_create_that_a_damaged_key_stops_fails_alone_and_is_undone(any_store, damaged):
    # A key of bob's create is of another type: its own events key (its first write), or his
    # active index (written after its events, its context's index and the context's owner).
    # His create is refused with the reason and everything it wrote is undone; alice's create
    # in the same call goes through.
    r, k = any_store.redis, any_store.keys
    damaged_key = k.events("bobs-task") if damaged == "events" else k.index_owner_active("bob")
    await r.set(damaged_key, "damaged")
    good, broken = await asyncio.gather(
        any_store.create_task(user_message("fine"), context_id="hers", identity="alice"),
        any_store.create_task(user_message("broken"), task_id="bobs-task", context_id="his", identity="bob"),
        return_exceptions=True,
    )
    assert isinstance(broken, StoreError) and "WRONGTYPE" in str(broken)
    record, created = good
    assert created and await r.lrange(k.queue, 0, -1) == [record.id]
    assert (await r.hgetall(k.counts))["submitted"] == "1" and await r.zcard(k.index_active) == 1
    assert await r.hgetall(k.context_owners) == {"hers": "alice"}
    assert await r.exists(k.events("bobs-task"), k.index_context("his"), k.active("bobs-task")) == (damaged == "events")
    assert await r.get(damaged_key) == "damaged"  # the damaged key itself is left for its owner to see
    # The context is free: once the key is repaired, bob starts it as his own.
    await r.delete(damaged_key)
    _, created = await any_store.create_task(user_message("again"), context_id="his", identity="bob")
    assert created and await r.hget(k.context_owners, "his") == "bob"


async def test_a_new_task_starts_its_own_events_over_a_list_left_without_a_task(any_store):
    r, k = any_store.redis, any_store.keys
    await r.rpush(k.events("reused"), "7", "left over")
    await create(any_store, task_id="reused")
    events = await any_store.read_events("reused")
    assert [list(e) for _, e in events] == [["task"]]


async def test_a_server_that_refuses_writes_fails_the_whole_call_so_the_client_can_fail_over(store):
    # With too few replicas (as on a master that lost them, or a replica after a failover) the
    # refusal is the server's, not one task's damage: every script call answers with Redis's
    # own error, which the client's failover handling acts on, and writes nothing.
    r, k = store.redis, store.keys
    waiting = await create(store)
    claim = await claim_one(store)
    await r.config_set("min-replicas-to-write", 1)
    try:
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            await store.create_task(user_message("refused"))
        # A worker's write waits it out as an outage (for its patience), then gives up, saying why.
        with pytest.raises(OutageTooLong, match="NOREPLICAS"):
            await ClaimUpdater(store, claim, write_patience=0.3).complete("done")
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            await store.delete(waiting.id)
    finally:
        await r.config_set("min-replicas-to-write", 0)
    assert await r.llen(k.queue) == 0 and (await r.hgetall(k.counts))["submitted"] == "0"
    assert (await store.get(waiting.id)).state is TaskState.WORKING


async def test_a_call_that_a_damaged_shared_key_stops_remembers_no_message_id(any_store):
    # The queue is a key of another type: the call fails for its callers, and once the queue is
    # repaired the same message (same message id) is created and queued, not answered with a
    # task that was never queued.
    r, k = any_store.redis, any_store.keys
    message = {**user_message("once"), "messageId": "m-queue"}
    await r.set(k.queue, "not a list")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await any_store.create_task(message, context_id="c")
    await r.delete(k.queue)
    record, created = await any_store.create_task(message, context_id="c")
    assert created and await r.lrange(k.queue, 0, -1) == [record.id]


async def test_every_change_publishes_a_notice(any_store):
    pubsub = any_store.redis.pubsub()
    await pubsub.subscribe("a2a:queue:notify")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    record = await create(any_store, context_id="ctx-n")
    await any_store.request_cancel(record.id)
    notices = await notices_heard(pubsub, 2)
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


async def test_a_batch_take_leaves_processing_as_one_move_at_a_time_would(any_store):
    r, k = any_store.redis, any_store.keys
    ids = [(await create(any_store, f"task {i}")).id for i in range(5)]
    assert await any_store.take(0) == ([], 5)
    assert await r.lrange(k.processing, 0, -1) == []
    taken, left = await any_store.take(3)
    assert taken == ids[:3] and left == 2
    # The oldest deepest: the order BLMOVE leaves, which recovery reads back.
    assert await r.lrange(k.processing, 0, -1) == ids[2::-1]
    assert await any_store.take(10) == (ids[3:], 0)
    assert await r.lrange(k.processing, 0, -1) == ids[::-1]
    assert await r.exists(k.queue) == 0


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


async def test_a_message_naming_no_context_starts_a_new_task_whatever_its_id(any_store):
    # The conformance kit sends one message id several times without a context and expects
    # each to run: such a message is not looked up by its id.
    first, created = await any_store.create_task(user_message("once", "m-3"))
    again, created_again = await any_store.create_task(user_message("once", "m-3"))
    assert created and created_again and again.id != first.id and again.context_id != first.context_id


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
    assert await r.zrange(k.index_context(record.context_id), 0, -1) == [task_id]
    counts = await r.hgetall(k.counts)
    assert counts[state.value] == "1" and counts["working"] == "0" and counts[f"total_{state.value}"] == "1"
    assert await r.pttl(k.events(task_id)) > 0
    stats = await any_store.stats()
    assert stats.by_state[state.value] == 1 and stats.active == 0
    if state in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED):
        assert stats.per_minute[-1][state.value] == 1


HISTORY_OWN = {"state", "context_id", "task", "identity", "token", "progress", "status", "updated_ms", "rev"}
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _claim_after(store, how: str):
    """A claim of a task that got to it the way ``how`` says, and the task."""
    record = await create(store, identity="alice", trace=TRACE if how == "traced" else None)
    if how in ("retried", "continued"):
        first = ClaimUpdater(store, await claim_one(store))
        if how == "retried":
            await first.fail("first attempt")
            await store.retry(record.id)
        else:
            await first.require_input("which city?")
            await store.continue_task(record.id, user_message("Lisbon"))
    if how == "resent":  # the first reply was lost: the worker asks again with the same token
        ids, _ = await store.take(1)
        await store.lease(ids, "w1", 30, {record.id: "token-1"})
        await asyncio.sleep(0.02)
        [claim] = await store.lease(ids, "w1", 30, {record.id: "token-1"})
        return claim, record
    if how == "left-over field":  # a field the claim does not know, say from an earlier version
        await store.redis.hset(store.keys.active(record.id), "claimed_ms", "1700000000000")
    return await claim_one(store), record


@pytest.mark.parametrize("how", ["plain", "traced", "retried", "continued", "resent", "left-over field"])
async def test_a_workers_finish_keeps_the_same_bookkeeping_as_the_hash_held(any_store, how):
    # A worker's finish sends the history's meta from its claim instead of reading the hash:
    # it must be the hash's own fields all the same, so that a retry or a read finds them.
    r, k = any_store.redis, any_store.keys
    claim, record = await _claim_after(any_store, how)
    updater = ClaimUpdater(any_store, claim)
    await updater.working("on it", progress=0.5)
    held = await r.hgetall(k.active(record.id))
    await updater.fail("it broke")
    stored = await r.hgetall(k.deadletter(record.id))
    meta = json.loads(stored["meta"])
    expected = {name: value for name, value in held.items() if name not in HISTORY_OWN}
    assert int(meta.pop("finished_ms")) >= int(held["updated_ms"])
    assert meta == {**expected, "rev": str(int(held["rev"]) + 1), "error": "it broke"}
    assert stored["identity"] == "alice" and stored["context_id"] == record.context_id
    finished = await any_store.require(record.id)
    assert (finished.created_ms, finished.started_ms, finished.error) == (record.created_ms, int(held["started_ms"]), "it broke")
    assert finished.trace == (TRACE if how == "traced" else None)


async def test_a_finish_sent_no_bookkeeping_still_stores_its_revision_and_time(any_store, monkeypatch):
    r, k = any_store.redis, any_store.keys
    record = await create(any_store)
    claim = await claim_one(any_store)
    monkeypatch.setattr(TaskRecord, "history_meta", lambda self, error=None: "{}")
    await ClaimUpdater(any_store, claim).complete("done")
    meta = json.loads((await r.hgetall(k.deadletter(record.id)))["meta"])
    assert meta.keys() == {"rev", "finished_ms"} and int(meta["rev"]) > int(claim.record.rev)


async def test_a_finished_task_cannot_be_written_by_its_old_worker(any_store):
    await create(any_store)
    claim = await claim_one(any_store)
    await ClaimUpdater(any_store, claim).complete("done")
    with pytest.raises(TaskNotFound):
        await ClaimUpdater(any_store, claim).fail("too late")
    assert (await any_store.require(claim.record.id)).state is TaskState.COMPLETED


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
    record = await any_store.request_cancel(claim.record.id, "Canceled from the dashboard")
    assert record.state is TaskState.WORKING and not record.finished  # still running until its worker stops
    lost, cancel = await any_store.heartbeat("w1", {}, [claim], 30)
    assert lost == [] and cancel == {claim.record.id: "Canceled from the dashboard"}  # the worker ends it with the caller's words
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


async def test_deletes_asked_for_together_go_in_one_call_and_each_gets_its_own_answer(any_store):
    r, k = any_store.redis, any_store.keys
    done = [await finish_as(any_store, TaskState.COMPLETED, context_id="shared") for _ in range(2)]
    failed = await finish_as(any_store, TaskState.FAILED, "boom")
    waiting = await create(any_store, context_id="shared")
    pubsub = r.pubsub()
    await pubsub.subscribe(k.notify)
    await pubsub.get_message(timeout=1)
    outcomes = await asyncio.gather(
        *(any_store.delete(task_id, only_finished=True) for task_id in [done[0].id, "no-such-task", waiting.id, failed.id, done[1].id]),
        return_exceptions=True,
    )
    assert outcomes[0] is TaskState.COMPLETED and outcomes[3] is TaskState.FAILED and outcomes[4] is TaskState.COMPLETED
    assert isinstance(outcomes[1], TaskNotFound) and isinstance(outcomes[2], InvalidTransition)
    # One call: one message naming the three deleted tasks, with the queue length of the end.
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
    await pubsub.aclose()
    assert [(n["task_id"], n["event"], n["queue_length"]) for n in json.loads(message["data"])] == [
        (done[0].id, "deleted", 1),
        (failed.id, "deleted", 1),
        (done[1].id, "deleted", 1),
    ]
    for record in [*done, failed]:
        assert await any_store.get(record.id) is None
    assert await r.zrange(k.index_context("shared"), 0, -1) == [waiting.id]  # the context keeps its waiting task
    assert await r.zcard(k.index_history_state("completed")) == 0 and await r.zcard(k.index_history_state("failed")) == 0
    counts = await r.hgetall(k.counts)
    assert counts["completed"] == "0" and counts["failed"] == "0" and counts["submitted"] == "1"
    assert await r.lrange(k.queue, 0, -1) == [waiting.id]


async def test_deleting_a_contexts_last_task_removes_the_context_set_earlier_versions_kept(any_store):
    r, k = any_store.redis, any_store.keys
    first = await finish_as(any_store, TaskState.COMPLETED, context_id="old")
    second = await finish_as(any_store, TaskState.COMPLETED, context_id="old")
    await r.sadd(k.legacy_context("old"), first.id, second.id)  # as a store of an earlier version left it
    await any_store.delete(first.id)
    assert await r.exists(k.legacy_context("old")) == 1  # the context still has a task
    await any_store.delete(second.id)
    assert await r.exists(k.legacy_context("old"), k.index_context("old")) == 0
    assert await r.zscore(k.contexts, "old") is None


async def test_deleting_the_last_tasks_of_two_contexts_together_removes_both_contexts(any_store):
    r, k = any_store.redis, any_store.keys
    first = await finish_as(any_store, TaskState.COMPLETED, context_id="one", identity="alice")
    second = await finish_as(any_store, TaskState.COMPLETED, context_id="two", identity="bob")
    kept = await finish_as(any_store, TaskState.COMPLETED, context_id="three", identity="alice")
    await asyncio.gather(any_store.delete(first.id, only_finished=True), any_store.delete(second.id, only_finished=True))
    assert await r.zrange(k.contexts, 0, -1) == ["three"]
    assert await r.hgetall(k.context_owners) == {"three": "alice"}
    assert await r.zrange(k.index_owner_history_state("alice", "completed"), 0, -1) == [kept.id]
    assert await r.exists(k.index_owner_history_state("bob", "completed")) == 0


async def test_a_finished_task_whose_state_field_is_lost_is_still_deleted_as_finished(any_store):
    # A damaged finished hash: it is the one deleted (state unknown), even by retention's
    # finished-only delete, and nothing of the task is left in the indexes.
    r, k = any_store.redis, any_store.keys
    record = await finish_as(any_store, TaskState.COMPLETED)
    await r.hdel(k.deadletter(record.id), "state")
    assert await any_store.delete(record.id, only_finished=True) is TaskState.UNKNOWN
    assert await r.exists(k.deadletter(record.id), k.events(record.id)) == 0
    assert await r.zscore(k.index_history_state("completed"), record.id) is None


async def test_delete_of_unfinished_task_can_be_refused(any_store):
    record = await create(any_store)
    with pytest.raises(InvalidTransition):
        await any_store.delete(record.id, only_finished=True)
    assert await any_store.redis.lrange("a2a:queue", 0, -1) == [record.id]
    await any_store.delete(record.id)
    assert await any_store.redis.llen("a2a:queue") == 0
    assert (await any_store.stats()).by_state["submitted"] == 0


async def test_delete_reads_a_task_without_its_context_field_the_long_way(any_store):
    # Deleting reads only context_id and identity; a hash without them is read whole, as before.
    record = await create(any_store)
    await any_store.redis.hdel(any_store.keys.active(record.id), "context_id")
    assert await any_store.delete(record.id) is TaskState.SUBMITTED
    assert await any_store.get(record.id) is None and await any_store.redis.llen("a2a:queue") == 0


async def test_a_retried_task_gets_its_bookkeeping_back(any_store):
    r, k = any_store.redis, any_store.keys
    record = await finish_as(any_store, TaskState.FAILED, "boom")
    before = await any_store.get(record.id)
    retried = await any_store.retry(record.id)
    stored = await r.hgetall(k.active(record.id))
    assert "meta" not in stored and stored["created_ms"] == str(before.created_ms)
    assert int(stored["rev"]) == int(before.rev) + 1 and retried.created_ms == before.created_ms
    assert retried.task["history"] == before.task["history"]
