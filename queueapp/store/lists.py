"""Pages of tasks and contexts, newest first, read from the time indexes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from queueapp.model import TaskRecord
from queueapp.states import FINISHED, TERMINAL, TaskState
from queueapp.store.reads import Reads
from queueapp.store.results import Page

Predicate = Callable[[TaskRecord], bool]
MAX_FILTERED_READ = 200  # whole tasks a filtered page reads at a time, at most
MAX_COUNT_READ = 1000  # task states a count reads at a time
CURSOR_SCORE = re.compile(r"-?[0-9]+(\.[0-9]{1,3})?")


def valid_cursor(cursor: str) -> bool:
    """Is ``cursor`` of the form a page's ``next_cursor`` has (``score:id``, a score in ms with up to three decimals)?"""
    score, sep, member = cursor.partition(":")
    return bool(sep and member) and CURSOR_SCORE.fullmatch(score) is not None


def _score(score: float) -> str:
    """An index score as Redis reads it back exactly: ms with three decimals (earlier versions wrote ``ms.n``)."""
    return f"{score:.3f}"


class Lists(Reads):
    async def _page_from_indexes(self, indexes: list[str], cursor: str, limit: int, predicate: Predicate | None = None) -> Page:
        """Newest first from one or more sorted sets, continuing after an opaque cursor ``score:id``.

        Several indexes (every finished state, say) are merged as if they were one. A score
        is the write's time in whole ms (``index_score`` in ``_common.lua``), so writes of one
        ms tie: they come in reverse id order (ids are time-ordered, ``model.new_id``) and the
        cursor's id breaks the tie. Reads one page from each index (plus what the predicate
        drops, and the ties before the cursor), never a whole index.
        """
        pipe = self.redis.pipeline(transaction=False)
        for index in indexes:
            pipe.zcard(index)
        total = sum(await pipe.execute())
        max_score, after = ("+inf", None) if not cursor else (cursor.partition(":")[0], cursor.partition(":")[2])
        found: list[tuple[TaskRecord, str, float]] = []
        batch = limit + 1
        while True:
            rows = await self._newest_after(indexes, max_score, after, batch)
            for (member, score), record in zip(rows, await self.get_many(m for m, _ in rows), strict=True):
                if record is not None and (predicate is None or predicate(record)):
                    found.append((record, member, score))
            if len(found) > limit or len(rows) < batch:
                break
            max_score, after = _score(rows[-1][1]), rows[-1][0]
            # The predicate dropped rows: read more at a time, so that a filter matching few of
            # many tasks costs a few round trips, not one per page size.
            batch = max(batch, min(batch * 4, MAX_FILTERED_READ))
        next_cursor = ""
        if len(found) > limit:
            _, member, score = found[limit - 1]
            next_cursor = f"{_score(score)}:{member}"
        return Page([record for record, _, _ in found[:limit]], next_cursor, total)

    async def _newest_after(self, indexes: list[str], max_score: str, after: str | None, count: int) -> list[tuple[str, float]]:
        """The ``count`` newest members of the indexes together that come after the cursor."""

        async def from_one(index: str) -> list[tuple[str, float]]:
            # One round trip reads the first chunk at or below the cursor's score and, with a
            # cursor, where the cursor's member stands. Writes of one ms tie (a claim or finish
            # of many tasks scores them all alike), and the chunk's first rows may be the
            # cursor's tie group: when they take the whole chunk, the rows after the member are
            # read by rank instead of chunk after chunk through the group.
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrevrangebyscore(index, max_score, "-inf", start=0, num=count, withscores=True)
            if after is not None:
                pipe.zrevrank(index, after)
                pipe.zscore(index, after)
            chunk, *position = await pipe.execute()
            rows = [(m, s) for m, s in chunk if after is None or s < float(max_score) or m < after]
            if len(rows) == count or len(chunk) < count:
                return rows
            rank, score = position
            if rank is not None and score == float(max_score):  # the member is still where the cursor left it
                return list(await self.redis.zrevrange(index, rank + 1, rank + count, withscores=True))
            offset = len(chunk)  # the member moved or left: walk on through the ties
            while len(rows) < count:
                chunk = await self.redis.zrevrangebyscore(index, max_score, "-inf", start=offset, num=count, withscores=True)
                offset += len(chunk)
                rows += [(m, s) for m, s in chunk if s < float(max_score) or m < after]
                if len(chunk) < count:
                    break
            return rows[:count]

        merged = [row for rows in await asyncio.gather(*(from_one(index) for index in indexes)) for row in rows]
        merged.sort(key=lambda row: (row[1], row[0]), reverse=True)
        return merged[:count]

    async def list_tasks(
        self, *, state: TaskState | None = None, context_id: str | None = None, cursor: str = "", limit: int = 50, owner: str | None = None
    ) -> Page:
        """Tasks newest first (by last status time), filtered by state and/or context.

        With ``owner``, only that identity's tasks, read from its own indexes; a context of
        someone else's lists nothing. Without, every task.
        """
        k = self.keys
        if owner and context_id and await self.context_owner(context_id) != owner:
            return Page([], "", 0)
        active = k.index_owner_active(owner) if owner else k.index_active
        history = k.index_owner_history_states(owner) if owner else k.index_history_states
        predicate = None
        if context_id:
            indexes = [k.index_context(context_id)]
            if state is not None:
                predicate = lambda r: r.state == state  # noqa: E731
        elif state is not None and state in TERMINAL:
            indexes = [history[FINISHED.index(state)]]
        elif state is not None:
            indexes = [active]
            predicate = lambda r: r.state == state  # noqa: E731
        else:
            indexes = [active, *history]
        page = await self._page_from_indexes(indexes, cursor, limit, predicate)
        if predicate is not None and state is not None:  # a predicate is set only to filter on a state
            counted = not context_id and not owner
            page.total = int(await self.redis.hget(k.counts, state.value) or 0) if counted else await self._count_in(indexes[0], state)
        return page

    async def _count_in(self, index: str, state: TaskState) -> int:
        """How many of the index's tasks are in ``state``: one field of each task's hashes, not the tasks."""
        k, count = self.keys, 0
        ids = await self.redis.zrange(index, 0, -1)
        for start in range(0, len(ids), MAX_COUNT_READ):
            pipe = self.redis.pipeline(transaction=False)
            for task_id in ids[start : start + MAX_COUNT_READ]:
                pipe.hget(k.deadletter(task_id), "state")
                pipe.hget(k.active(task_id), "state")
            states = await pipe.execute()
            stored = (finished or active for finished, active in zip(states[::2], states[1::2], strict=True))
            count += sum(1 for text in stored if text is not None and TaskState.parse(text) is state)
        return count

    async def history(self, *, state: TaskState | None = None, cursor: str = "", limit: int = 50, owner: str | None = None) -> Page:
        """Finished tasks newest first; with ``owner``, that identity's only (its own indexes)."""
        k = self.keys
        if owner:
            indexes = [k.index_owner_history_state(owner, state.value)] if state else k.index_owner_history_states(owner)
        else:
            indexes = [k.index_history_state(state.value)] if state else k.index_history_states
        return await self._page_from_indexes(indexes, cursor, limit)

    async def active_tasks(self, *, cursor: str = "", limit: int = 50, owner: str | None = None) -> Page:
        index = self.keys.index_owner_active(owner) if owner else self.keys.index_active
        return await self._page_from_indexes([index], cursor, limit)

    async def queue_page(self, offset: int = 0, limit: int = 50) -> Page:
        """Waiting tasks in the order they will be taken (position 1 is next)."""
        length = await self.redis.llen(self.keys.queue)
        start, end = -(offset + limit), -(offset + 1)
        ids = list(reversed(await self.redis.lrange(self.keys.queue, max(length + start, 0), length + end))) if offset < length else []
        records = [r for r in await self.get_many(ids) if r is not None]
        return Page(records, str(offset + limit) if offset + limit < length else "", length)

    async def list_contexts(self, *, cursor: str = "", limit: int = 50) -> Page:
        """Context ids newest activity first, with task counts and owners (None: made with auth off)."""
        k = self.keys
        total = await self.redis.zcard(k.contexts)
        offset = int(cursor or 0)
        rows = await self.redis.zrevrange(k.contexts, offset, offset + limit - 1, withscores=True)
        pipe = self.redis.pipeline(transaction=False)
        for context_id, _ in rows:
            pipe.zcard(k.index_context(context_id))
        pipe.hmget(k.context_owners, [c for c, _ in rows] or [""])
        *counts, owners = await pipe.execute()
        items = [
            {"context_id": c, "last_activity_ms": int(s), "task_count": n, "owner": owner}
            for (c, s), n, owner in zip(rows, counts, owners[: len(rows)], strict=True)
        ]
        return Page(items, str(offset + limit) if offset + limit < total else "", total)
