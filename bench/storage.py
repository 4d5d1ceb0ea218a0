"""Benchmark 4, scale of storage: read times and memory with 10k, 100k, 1M finished tasks.

The tasks are written by the store's own code (``create_task`` then ``finish``, many at
once so that the automatic pipeline batches them), so Redis holds exactly what a real
run leaves: the history hash, the indexes, the message-id key and the task's events. Each size is reached by adding to the previous one. Reads are timed as
the median of many calls; memory is the growth of ``used_memory`` per task added.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from bench.common import RedisServer, Table, fmt, median
from queueapp import model
from queueapp.states import TaskState
from queueapp.store import Keys, QueueStore
from queueapp.worker.updater import ClaimUpdater

BATCH = 500
PROBE_CONTEXT = "bench-probe-context"
PROBE_TASKS = 20
READS = 30
EXPIRE_EVERY = 100_000  # steps larger than this let the tasks' events expire as they go
OWNER = "bench-owner"  # with auth on, the identity whose ListTasks is timed
OWNER_SHARE = 10  # it owns one task more for every 10 anonymous ones
KEY_NAMES = Keys()  # the default prefix, which the benchmark store uses


def parse_sizes(text: str) -> list[int]:
    """``10k,100k,1m`` -> [10000, 100000, 1000000], ascending."""
    sizes = []
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        factor = {"k": 1_000, "m": 1_000_000}.get(item[-1], 1)
        try:
            number = float(item[:-1] if factor > 1 else item)
        except ValueError:
            raise ValueError(f"size {item!r} is not a number such as 10k, 100k or 1m") from None
        if number <= 0:
            raise ValueError(f"size {item!r} must be above zero")
        sizes.append(int(number * factor))
    if not sizes:
        raise ValueError("no sizes given: expected a list such as 10k,100k,1m")
    return sorted(set(sizes))


WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{model.new_id()[-8:]}"  # shaped like a real worker's


REPLY = "Sunny, 24 degrees, light wind from the north."


async def finished_tasks(store: QueueStore, count: int, context_id: str | None = None, identity: str | None = None, reply: str = REPLY) -> list[str]:
    """Text tasks, created, claimed and completed with ``reply`` the way a worker does it.

    The queue must hold nothing else: the claim takes the oldest waiting ids.
    """
    question = model.message("user", [model.text_part("What is the weather in Lisbon today?")])
    await asyncio.gather(
        *(store.create_task({**question, "messageId": model.new_id()}, context_id=context_id, identity=identity) for _ in range(count))
    )
    ids, _ = await store.take(count)
    claims = await store.lease(ids, WORKER_ID, 60)
    await asyncio.gather(*(ClaimUpdater(store, claim).complete(reply) for claim in claims))
    return ids


async def fill(store: QueueStore, client: aioredis.Redis, count: int, expire_every: int = 0, identity: str | None = None) -> None:
    """Add ``count`` finished tasks; with ``expire_every``, let the transient keys expire that often."""
    for start in range(0, count, BATCH):
        await finished_tasks(store, min(BATCH, count - start), identity=identity)
        if expire_every and (start // BATCH + 1) % max(expire_every // BATCH, 1) == 0:
            await expire(client, KEY_NAMES.events("*"))


async def timed(call: Callable[[], Awaitable[Any]], repeat: int = READS) -> float:
    """Median milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


async def middle_cursor(client: aioredis.Redis) -> str:
    """A history cursor halfway down the index, to read a page from the middle."""
    index = KEY_NAMES.index_history_state("completed")
    rank = await client.zcard(index) // 2
    rows = await client.zrevrange(index, rank, rank, withscores=True)
    member, score = rows[0]
    return f"{int(score)}:{member}"


READ_NAMES = (
    "history page (first 50)",
    "history page (50 from the middle)",
    "one context (20 tasks)",
    "ListTasks (50, no filter)",
    "ListTasks (50, state completed)",
    "ListTasks of one owner (50, no filter)",
    "ListTasks of one owner (50, state completed)",
    "stats",
)


async def measure(store: QueueStore, client: aioredis.Redis) -> dict[str, float]:
    cursor = await middle_cursor(client)
    reads = (
        lambda: store.history(limit=50),
        lambda: store.history(cursor=cursor, limit=50),
        lambda: store.context_tasks(PROBE_CONTEXT),
        lambda: store.list_tasks(limit=50),
        lambda: store.list_tasks(state=TaskState.COMPLETED, limit=50),
        lambda: store.list_tasks(limit=50, owner=OWNER),
        lambda: store.list_tasks(state=TaskState.COMPLETED, limit=50, owner=OWNER),
        store.stats,
    )
    return {name: await timed(read) for name, read in zip(READ_NAMES, reads, strict=True)}


async def expire(client: aioredis.Redis, *patterns: str) -> None:
    """Remove keys that expire on its own (the tasks' events, message-id keys), as time would."""
    for pattern in patterns:
        batch = []
        async for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)


async def run_async(url: str, sizes: list[int]) -> tuple[Table, dict[int, dict[str, float]]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    store = QueueStore(client, KEY_NAMES)
    results: dict[int, dict[str, float]] = {}
    try:
        await client.flushall()
        await finished_tasks(store, PROBE_TASKS, PROBE_CONTEXT)
        have, owned = PROBE_TASKS, 0
        for size in sizes:
            before = (await client.info("memory"))["used_memory"]
            added_at = time.perf_counter()
            # A large step would hold every event stream at once (4-5 KB each) for no reason:
            # in a real run each expires A2A_EVENTS_TTL after its task finished.
            expire_every = EXPIRE_EVERY if size - have > EXPIRE_EVERY else 0
            await fill(store, client, size - have, expire_every)
            seconds = time.perf_counter() - added_at
            grown = (await client.info("memory"))["used_memory"] - before
            added, have = size - have, size
            sample = (await store.history(limit=1)).items[0].id
            await expire(client, KEY_NAMES.events("*"))
            first_day = (await client.info("memory"))["used_memory"] - before
            await expire(client, KEY_NAMES.message_id("*", "*"))  # also matches per-owner ids
            kept = (await client.info("memory"))["used_memory"] - before
            # Then the owner's share, measured apart so the rows above stay those of auth off.
            owned_before, owned_added = (await client.info("memory"))["used_memory"], size // OWNER_SHARE - owned
            await fill(store, client, owned_added, EXPIRE_EVERY if owned_added > EXPIRE_EVERY else 0, identity=OWNER)
            owned = size // OWNER_SHARE
            reads = await measure(store, client)
            await expire(client, KEY_NAMES.events("*"), KEY_NAMES.message_id("*", "*"))
            owned_kept = (await client.info("memory"))["used_memory"] - owned_before
            results[size] = {
                **reads,
                "memory per task, first A2A_EVENTS_TTL (bytes)": grown / added if added and not expire_every else float("nan"),
                "memory per task, first day (bytes)": first_day / added if added else float("nan"),
                "memory per task, after (bytes)": kept / added if added else float("nan"),
                "memory per owned task (auth on), after (bytes)": owned_kept / owned_added if owned_added else float("nan"),
                "history hash of one task (bytes)": float(await client.memory_usage(KEY_NAMES.deadletter(sample), samples=0) or 0),
                "writes/s while filling": added / seconds if seconds else float("nan"),
            }
    finally:
        await client.aclose()
    return table(results, sizes), results


def table(results: dict[int, dict[str, float]], sizes: list[int]) -> Table:
    names = list(results[sizes[0]])
    first, last = sizes[0], sizes[-1]
    out = Table(
        f"4. Storage scale: finished small text tasks ({', '.join(f'{s:,}' for s in sizes)}), read times in ms (median of {READS})",
        ["measure", *(f"{s:,} tasks" for s in sizes), f"{last:,} vs {first:,}"],
    )
    for name in names:
        values = [results[s][name] for s in sizes]
        if name in READ_NAMES:  # a time: how many times slower at the largest size
            out.add(name, *(fmt(v, 2) for v in values), f"{values[-1] / values[0]:.2f}x")
        else:
            out.add(name, *(fmt(v) for v in values), "-")
    page = [results[s]["history page (first 50)"] for s in sizes]
    first_day = [results[s]["memory per task, first day (bytes)"] for s in sizes]
    memory = [results[s]["memory per task, after (bytes)"] for s in sizes]
    out.notes.append(f"goal: history page at the largest size within 2x of the smallest: {page[-1] / page[0]:.2f}x")
    out.notes.append(
        f"goal: at most 2 KB of Redis memory per small finished task in its first day: {fmt(median(first_day))} bytes with its message-id key,"
        f" {fmt(median(memory))} once that expires too (medians over the steps)"
    )
    owner_page = [results[s]["ListTasks of one owner (50, no filter)"] for s in sizes]
    out.notes.append(
        f"an owner's ListTasks reads its own indexes: at the largest size within {owner_page[-1] / owner_page[0]:.2f}x of the smallest;"
        f" {OWNER!r} owns one task more for every {OWNER_SHARE} anonymous ones ({last // OWNER_SHARE:,} at {last:,})"
    )
    out.notes.append(
        "memory per task is the growth of used_memory per task added: history hash and index entries, and for the first A2A_EVENTS_TTL"
        " (10 min) its events, for the first A2A_IDEMPOTENCY_TTL (24 h, 'first day') its message-id key; 'after' is once both expired"
    )
    return out


def run(server: RedisServer, sizes: list[int]) -> tuple[Table, dict[int, dict[str, float]]]:
    return asyncio.run(run_async(server.url, sizes))
