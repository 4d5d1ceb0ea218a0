"""Claims: take, lease, pause, heartbeats and recovery, on Redis and fakeredis."""

from __future__ import annotations

import asyncio
import json

from queueapp import model
from queueapp.events import NotifyListener, follow_task
from queueapp.states import TaskState
from queueapp.worker.updater import ClaimUpdater
from tests.store_support import claim_one, create, notices_heard


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
    pubsub = any_store.redis.pubsub()
    await pubsub.subscribe("a2a:queue:notify")
    await pubsub.get_message(timeout=1)
    assert await any_store.lease(ids, "w1", 30) == []
    [notice] = await notices_heard(pubsub, 1)  # the queue's length is back: a dashboard refreshes it
    await pubsub.aclose()
    assert (notice["event"], notice["task_id"], notice["queue_length"]) == ("given-back", "", 2)
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
    notices = await notices_heard(pubsub, 2)
    await pubsub.aclose()
    assert [n["event"] for n in notices] == ["paused", "resumed"]
    assert all(n.keys() == {"task_id", "context_id", "state", "queue_length", "event"} and n["queue_length"] == 1 for n in notices)


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


async def test_a_claim_and_a_finish_of_many_tasks_publish_one_message_each(any_store):
    for i in range(3):
        await create(any_store, f"task {i}")
    pubsub = any_store.redis.pubsub()
    await pubsub.subscribe("a2a:queue:notify")
    await pubsub.get_message(timeout=1)
    ids, _ = await any_store.take(3)
    claims = await any_store.lease(ids, "w1", 30)
    await asyncio.gather(*(ClaimUpdater(any_store, claim).complete("done") for claim in claims))  # one turn: one finish call
    messages = [json.loads(m["data"]) for m in [await pubsub.get_message(ignore_subscribe_messages=True, timeout=2) for _ in range(2)] if m]
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
    await pubsub.aclose()
    assert [[(n["task_id"], n["state"], n["event"], n["queue_length"]) for n in batch] for batch in messages] == [
        [(i, "working", "update", 0) for i in ids],
        [(i, "completed", "finished", 0) for i in ids],
    ]


async def test_the_listener_wakes_the_followers_of_every_task_a_batch_names(any_store):
    listener = NotifyListener(any_store)
    heard: list[tuple[str, str]] = []
    listener.add(lambda notice: heard.append((notice["task_id"], notice["state"])))
    try:
        await asyncio.wait_for(listener.connected.wait(), 5)
        records = [await create(any_store, f"task {i}") for i in range(3)]
        ids, _ = await any_store.take(3)
        followers = [follow_task(listener, record.id, await any_store.last_event_id(record.id), poll_interval=30) for record in records]
        waiting = [asyncio.ensure_future(anext(f)) for f in followers]
        await asyncio.sleep(0.2)  # each has read its events, found none new, and waits
        assert not any(w.done() for w in waiting)
        await any_store.lease(ids, "w1", 30)
        # Each follower gets its task's working event at once: the array's notices woke them, not the 30 s poll.
        events = await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert [event["statusUpdate"]["status"]["state"] for _, event in events] == ["TASK_STATE_WORKING"] * 3
        assert sorted(task_id for task_id, state in heard if state == "working") == sorted(ids)  # the dashboard hears each too
        for follower in followers:
            await follower.aclose()
    finally:
        await listener.stop()


async def test_notices_and_the_working_event_keep_a_context_id_that_json_must_escape(any_store):
    # The scripts write ids into JSON as they are unless they hold a quote, a backslash or a
    # control character: a client may choose a context id with any of them.
    context_id = 'quote " backslash \\ newline \n tab \t end'
    record = await create(any_store, context_id=context_id)
    pubsub = any_store.redis.pubsub()
    await pubsub.subscribe("a2a:queue:notify")
    await pubsub.get_message(timeout=1)
    claim = await claim_one(any_store)
    await ClaimUpdater(any_store, claim).complete("done")
    await any_store.delete(record.id)
    notices = await notices_heard(pubsub, 3)
    await pubsub.aclose()
    assert [(n["task_id"], n["context_id"], n["event"]) for n in notices] == [
        (record.id, context_id, "update"),
        (record.id, context_id, "finished"),
        (record.id, context_id, "deleted"),
    ]
    assert [n["queue_length"] for n in notices] == [0, 0, 0]


async def test_the_working_event_keeps_a_context_id_that_json_must_escape(any_store):
    context_id = 'quote " backslash \\ control \x01'
    record = await create(any_store, context_id=context_id)
    await claim_one(any_store)
    events = [event for _, event in await any_store.read_events(record.id)]
    assert events[-1]["statusUpdate"]["contextId"] == context_id
    assert events[-1]["statusUpdate"]["status"]["state"] == TaskState.WORKING.v1


async def test_a_take_of_several_moves_the_oldest_first_and_leaves_the_newest_at_the_head_of_processing(store):
    records = [await create(store, f"task {i}") for i in range(4)]
    ids, left = await store.take(3)
    assert ids == [r.id for r in records[:3]] and left == 1
    # Recovery reads the processing list in this order.
    assert await store.redis.lrange(store.keys.processing, 0, -1) == [r.id for r in reversed(records[:3])]
    assert [c.record.id for c in await store.lease(ids, "w1", 30)] == ids
