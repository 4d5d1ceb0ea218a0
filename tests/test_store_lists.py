"""The store's lists, index scores, per-minute stats and the worker registry, on Redis and fakeredis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from queueapp import histogram, model
from queueapp.states import FINISHED, TaskState
from queueapp.store.results import Page
from queueapp.worker.updater import ClaimUpdater
from tests.store_support import claim_one, create, finish_as


async def every_page(read: Callable[[str], Awaitable[Page]]) -> AsyncIterator[Page]:
    """The pages ``read(cursor)`` gives, from the first until one has no next cursor."""
    cursor = ""
    while True:
        page = await read(cursor)
        yield page
        cursor = page.next_cursor
        if not cursor:
            return


async def test_list_tasks_newest_first_with_cursor(any_store):
    ids = []
    for i in range(7):
        ids.append((await create(any_store, f"t{i}", context_id="c1" if i % 2 else "c2")).id)  # often in one ms: still in order
    seen = []
    async for page in every_page(lambda cursor: any_store.list_tasks(limit=3, cursor=cursor)):
        assert page.total == 7
        seen += [r.id for r in page.items]
    assert seen == list(reversed(ids))
    in_c1 = await any_store.list_tasks(context_id="c1")
    assert [r.id for r in in_c1.items] == [ids[5], ids[3], ids[1]]


async def test_list_tasks_merges_waiting_and_finished_tasks_page_by_page(any_store):
    finished = []
    for state in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.COMPLETED):
        finished.append(await finish_as(any_store, state))  # made one after another: creation order is finish order
    # Created in one go, so several share a millisecond: the cursor must break those ties.
    waiting = await asyncio.gather(*(create(any_store, f"w{i}") for i in range(9)))
    expected = {r.id for r in [*finished, *waiting]}
    seen, scores = [], []
    async for page in every_page(lambda cursor: any_store.list_tasks(limit=4, cursor=cursor)):
        assert page.total == len(expected)
        seen += [r.id for r in page.items]
        scores += [(r.updated_ms, r.id) for r in page.items]
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    assert [ms for ms, _ in scores] == sorted((ms for ms, _ in scores), reverse=True)
    history = await any_store.history(limit=3)
    assert history.total == 4 and [r.id for r in history.items] == [r.id for r in reversed(finished)][:3]
    rest = await any_store.history(limit=3, cursor=history.next_cursor)
    assert [r.id for r in rest.items] == [finished[0].id] and rest.next_cursor == ""


async def test_tasks_of_one_millisecond_list_in_creation_order_and_page_without_loss(any_store, monkeypatch):
    monkeypatch.setattr(model, "now_ms", lambda: 1_800_000_000_000)  # every write in the same ms
    finished = [await finish_as(any_store, TaskState.CANCELED) for _ in range(7)]
    seen = [r.id async for page in every_page(lambda cursor: any_store.history(limit=2, cursor=cursor)) for r in page.items]
    assert seen == [r.id for r in reversed(finished)]  # newest first, none twice, none lost
    scores = await any_store.redis.zrange(any_store.keys.index_history_state("canceled"), 0, -1, withscores=True)
    assert {s for _, s in scores} == {1_800_000_000_000}  # the score is the time in whole ms; ties sort by id


async def test_pages_through_a_large_group_of_tied_scores_even_when_the_cursors_task_leaves(any_store, monkeypatch):
    # A claim or finish of many tasks scores them all with the same ms: a page boundary falls
    # inside the group. A cursor whose task is deleted meanwhile still continues where it was.
    monkeypatch.setattr(model, "now_ms", lambda: 1_800_000_000_000)
    ids = [(await create(any_store, f"t{i}")).id for i in range(40)]
    seen, pages = [], 0
    async for page in every_page(lambda cursor: any_store.active_tasks(limit=7, cursor=cursor)):
        seen += [r.id for r in page.items]
        pages += 1
        if pages == 2:  # before the next page is read: the task its cursor names
            assert await any_store.delete(page.next_cursor.partition(":")[2])
    assert seen == list(reversed(ids)) and pages == 6  # newest first, none twice, none lost


async def test_scores_of_earlier_versions_page_among_whole_ms_ones(any_store, monkeypatch):
    # Earlier versions scored an index write 'ms.n' (n counting the writes of that ms). An
    # index that holds both kinds after an upgrade still lists newest first, each task once.
    clock = iter([1_800_000_000_001, 1_800_000_000_003, 1_800_000_000_005])
    monkeypatch.setattr(model, "now_ms", lambda: next(clock))
    new = [(await create(any_store, f"new{i}")).id for i in range(3)]
    old_scores = {"1800000000000.001": "t-old-a", "1800000000003.002": "t-old-b", "1800000000004.000": "t-old-c"}
    monkeypatch.setattr(model, "now_ms", lambda: 1_800_000_000_006)
    for score, name in old_scores.items():
        record = await create(any_store, name)
        await any_store.redis.zadd(any_store.keys.index_active, {record.id: score})
        old_scores[score] = record.id
    seen = [r.id async for page in every_page(lambda cursor: any_store.list_tasks(limit=2, cursor=cursor)) for r in page.items]
    a, b, c = old_scores.values()
    assert seen == [new[2], c, b, new[1], new[0], a]


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


async def test_a_state_that_few_of_an_owners_many_tasks_are_in_is_listed_in_a_few_reads(store, monkeypatch):
    # Before, each read of the walk took a page's worth of rows (2 for a page of 1): 300 waiting
    # tasks meant 150 round trips, and the count read every task whole.
    working = []
    for _ in range(2):
        await create(store, identity="bob")
        working.append((await claim_one(store)).record.id)
    for _ in range(300):
        await create(store, identity="bob")
    reads = 0
    newest_after = store._newest_after

    async def counted(*args):
        nonlocal reads
        reads += 1
        return await newest_after(*args)

    monkeypatch.setattr(store, "_newest_after", counted)
    pages = [page async for page in every_page(lambda cursor: store.list_tasks(state=TaskState.WORKING, owner="bob", limit=1, cursor=cursor))]
    assert [r.id for page in pages for r in page.items] == list(reversed(working)) and pages[0].total == 2
    assert reads <= 8, reads
    assert (await store.list_tasks(state=TaskState.SUBMITTED, owner="bob", limit=5)).total == 300
