"""Backfill of the owner indexes for tasks stored before tasks had owners.

Tasks written with auth on by an earlier version carry their ``identity`` but are in no
owner index, and their contexts have no owner: their owners would not see them. ``backfill``
reads the global indexes page by page and puts each such task in its owner's index of its
place, with the same score, and gives its context that owner when it has none. It is safe to
run again and while the server runs: it only adds what is missing.

Part of the store: only ``QueueStore.backfill_owners`` calls it, with its client and key names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from queueapp.model import TaskRecord
from queueapp.states import FINISHED
from queueapp.store.keys import Keys

BATCH = 500


async def backfill(client: Any, k: Keys, get_many: Callable[[Iterable[str]], Awaitable[list[TaskRecord | None]]]) -> int:
    """Index every owned task under its owner; returns how many tasks were looked at with an owner."""
    places = [(k.index_active, None), *((k.index_history_state(s.value), s.value) for s in FINISHED)]
    owned = 0
    for index, state in places:
        start = 0
        while rows := await client.zrange(index, start, start + BATCH - 1, withscores=True):
            start += len(rows)
            records = await get_many(member for member, _ in rows)
            pipe = client.pipeline(transaction=False)
            for (task_id, score), record in zip(rows, records, strict=True):
                if record is None or not record.identity:
                    continue
                owned += 1
                owner_index = k.index_owner_history_state(record.identity, state) if state else k.index_owner_active(record.identity)
                pipe.zadd(owner_index, {task_id: score}, nx=True)
                pipe.hsetnx(k.context_owners, record.context_id, record.identity)
            await pipe.execute()
    return owned
