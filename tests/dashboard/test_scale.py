"""Every page reads one page from an index: the commands Redis runs per page stay bounded
however many tasks it holds (checked with INFO commandstats on the test's own Redis)."""

from __future__ import annotations

import asyncio

import pytest

from tests.dashboard.support import login, submit

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = 600
PAGE = 50
COUNTERS = 62


async def commands_for(client, store, path: str) -> dict[str, int]:
    await store.redis.config_resetstat()
    response = await client.get(path)
    assert response.status_code == 200, path
    stats = await store.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def test_pages_cost_one_page_of_reads_not_the_whole_history(server, users, dash_store, set_config):
    records = []
    for chunk in range(FINISHED // 100):
        records += await asyncio.gather(*(submit(dash_store, f"job {chunk}-{i}", context_id="big") for i in range(100)))
    for chunk in range(0, FINISHED, 100):
        await asyncio.gather(*(dash_store.request_cancel(r.id) for r in records[chunk : chunk + 100]))
    for i in range(120):
        await submit(dash_store, f"waiting {i}")
    await users("boss", staff=True)
    client = await login(server, "boss")
    paths = [
        "/", "/dashboard/queue/", "/dashboard/queue/?offset=50", "/dashboard/active/", "/dashboard/history/",
        "/dashboard/history/?state=canceled", "/dashboard/contexts/", f"/dashboard/tasks/{records[0].id}/",
        "/dashboard/live/?page=overview", "/metrics",
    ]
    for path in paths:
        calls = await commands_for(client, dash_store, path)
        assert not {"keys", "scan", "hscan", "sscan", "zscan"} & set(calls), (path, calls)
        # Two hash reads per listed task (active or finished), one page plus one to look
        # ahead, plus the counters: the counts hash and up to 61 per-minute hashes.
        assert calls.get("hgetall", 0) <= 2 * (PAGE + 1) + COUNTERS, (path, calls)
        assert sum(calls.values()) <= 250, (path, calls)
    search = await commands_for(client, dash_store, "/dashboard/history/?q=job")
    assert search.get("hgetall", 0) <= 2 * 2 * (PAGE + 1) + COUNTERS + 2  # a page of matches within the first two batches
    set_config(dashboard_search_scan=100)
    nothing = await commands_for(client, dash_store, "/dashboard/history/?q=no-such-words")
    # Bounded by the scan setting (100 tasks, each page possibly read twice around the
    # cursor), not by the 600 finished tasks (which would be 1,200 reads).
    assert nothing.get("hgetall", 0) <= 4 * (100 + 2) + 2
    await client.aclose()
