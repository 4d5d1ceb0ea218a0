"""A task's events: ids that count them, cursors that survive trimming, retries and the streams of earlier versions."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis

from queueapp.states import TaskState
from queueapp.store import Keys, QueueStore, claims, transitions
from queueapp.worker.updater import ClaimUpdater
from tests.store_support import claim_one, create, finish_as
from tests.support import RedisServer


def number(event_id: str) -> int:
    """The n of an event id 'ms-n': its place among the task's events."""
    return int(event_id.split("-")[1])


async def test_a_reader_gets_what_came_after_its_cursor_in_order(any_store):
    record = await create(any_store)
    updater = ClaimUpdater(any_store, await claim_one(any_store))
    await updater.working("one")
    events = await any_store.read_events(record.id)
    ids = [event_id for event_id, _ in events]
    assert [number(i) for i in ids] == [1, 2, 3]  # created, claimed, the agent's report
    assert await any_store.last_event_id(record.id) == ids[-1]
    assert await any_store.read_events(record.id, after=ids[0]) == events[1:]
    assert await any_store.read_events(record.id, after=ids[0], count=1) == events[1:2]
    assert await any_store.read_events(record.id, after=ids[-1]) == []
    await updater.complete("done")
    [(last_id, last)] = await any_store.read_events(record.id, after=ids[-1])
    assert number(last_id) == 4 and last["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_the_oldest_events_past_the_limit_go_and_a_reader_keeps_its_place(any_store, monkeypatch):
    monkeypatch.setattr(transitions, "EVENTS_MAXLEN", 5)
    monkeypatch.setattr(claims, "EVENTS_MAXLEN", 5)
    record = await create(any_store)
    updater = ClaimUpdater(any_store, await claim_one(any_store))
    await updater.working("3")
    behind = await any_store.last_event_id(record.id)  # the 3rd
    for text in "456789":
        await updater.working(text)
    kept = await any_store.read_events(record.id)
    assert [number(i) for i, _ in kept] == [5, 6, 7, 8, 9]
    assert [e["statusUpdate"]["status"]["message"]["parts"][0]["text"] for _, e in kept] == list("56789")
    # A reader that fell behind the trimming gets what is left after its cursor; one that did not, the rest.
    assert await any_store.read_events(record.id, after=behind) == kept
    assert await any_store.read_events(record.id, after=kept[1][0]) == kept[2:]


async def test_a_retried_task_numbers_its_events_on_from_its_first_attempt(any_store):
    record = await finish_as(any_store, TaskState.FAILED)
    before = await any_store.last_event_id(record.id)
    await any_store.retry(record.id)
    [(event_id, event)] = await any_store.read_events(record.id, after=before)
    assert number(event_id) == number(before) + 1
    assert event["statusUpdate"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert await any_store.redis.ttl(any_store.keys.events(record.id)) == -1  # kept while the task runs again


async def test_a_stream_an_earlier_version_wrote_gives_way_to_the_next_event(any_store):
    r = any_store.redis
    record = await create(any_store)
    key = any_store.keys.events(record.id)
    await r.delete(key)
    await r.xadd(key, {"e": "{}"})  # the task's events as a store of an earlier version kept them
    assert await any_store.read_events(record.id) == []
    assert await any_store.last_event_id(record.id) == "0-0"
    claim = await claim_one(any_store)  # appends the working event
    assert claim.record.state is TaskState.WORKING
    assert await r.type(key) == "list"
    [(event_id, event)] = await any_store.read_events(record.id)
    assert number(event_id) == 1 and event["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"


async def test_a_full_redis_still_tells_a_follower_where_a_task_is():
    """Out of memory, Redis refuses writes and MULTI, but reads answer: SubscribeToTask must
    not take '0-0' for the newest event and replay the task's history after its snapshot."""
    server = RedisServer("--maxmemory", "3mb", "--maxmemory-policy", "noeviction").start()
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        store = QueueStore(client, Keys("a2a"))
        record = await create(store)
        newest = await store.last_event_id(record.id)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for i in range(10_000):
                await client.set(f"fill:{i}", "x" * 1000)
        assert await store.last_event_id(record.id) == newest != "0-0"
        assert [event_id for event_id, _ in await store.read_events(record.id)] == [newest]
    finally:
        await client.aclose()
        server.stop()
