"""Reading tasks, their events and their contexts."""

from __future__ import annotations

from collections.abc import Iterable

from queueapp import model
from queueapp.model import Json, TaskRecord
from queueapp.store.base import StoreBase
from queueapp.store.errors import TaskNotFound


def event_entry(ms: int, event: Json) -> str:
    """An event as a task's events list keeps it: '<ms>:<event JSON>' (push_event in _common.lua).

    Made here, not in the scripts: Redis's Lua hashes every byte of each string it makes, and
    an event carries the task's output. :meth:`Reads.read_events` reads it back.
    """
    return f"{ms}:{model.dumps(event)}"


class Reads(StoreBase):
    async def get(self, task_id: str) -> TaskRecord | None:
        records = await self.get_many([task_id])
        return records[0]

    async def get_many(self, task_ids: Iterable[str]) -> list[TaskRecord | None]:
        """Fetch many tasks in one round trip; a missing task is None."""
        ids = list(task_ids)
        if not ids:
            return []
        commands = [("HGETALL", key) for task_id in ids for key in (self.keys.active(task_id), self.keys.deadletter(task_id))]
        raw = await self.scripts.pipeline.call_many(commands)
        records: list[TaskRecord | None] = []
        for i, task_id in enumerate(ids):
            active, finished = raw[2 * i], raw[2 * i + 1]
            if finished:
                records.append(TaskRecord.from_hash(task_id, finished, True))
            elif active:
                records.append(TaskRecord.from_hash(task_id, active, False))
            else:
                records.append(None)
        return records

    async def require(self, task_id: str) -> TaskRecord:
        record = await self.get(task_id)
        if record is None:
            raise TaskNotFound(f"task {task_id} not found")
        return record

    async def context_and_owner(self, task_id: str, *, finished_only: bool = False) -> tuple[str, str | None]:
        """A task's context id and owner, read without its JSON (deleting it needs no more).

        ``finished_only`` reads the finished hash alone first (retention deletes only finished tasks).
        """
        k = self.keys
        fields = ("context_id", "identity")
        hashes = [k.deadletter(task_id)] if finished_only else [k.deadletter(task_id), k.active(task_id)]
        for context_id, identity in await self.scripts.pipeline.call_many([("HMGET", key, *fields) for key in hashes]):
            if context_id is not None:  # as get_many, the finished hash first
                return context_id, identity or None
        record = await self.require(task_id)  # no such task, or a hash without those fields
        return record.context_id, record.identity

    async def task_owner(self, task_id: str) -> str | None:
        """The identity a task belongs to, read without the task: None for no such task or one
        without an owner. One round trip whatever the task holds, so that an owner check made
        with it costs the same for another's task, however large, as for a missing one."""
        k = self.keys
        # The active hash first: a task that finishes between the two reads is still found.
        for identity in await self.scripts.pipeline.call_many([("HGET", key, "identity") for key in (k.active(task_id), k.deadletter(task_id))]):
            if identity is not None:
                return str(identity)
        return None

    async def context_owner(self, context_id: str) -> str | None:
        """The identity a context belongs to; None for one created with auth off, or unknown."""
        owner: str | None = await self.redis.hget(self.keys.context_owners, context_id)
        return owner

    async def context_tasks(self, context_id: str, limit: int = 200, *, exclude: str | None = None) -> list[TaskRecord]:
        """A context's tasks, oldest first (without the task ``exclude``, which is not read)."""
        ids = await self.scripts.pipeline.call("ZRANGE", self.keys.index_context(context_id), 0, limit - 1)
        return [r for r in await self.get_many(i for i in ids if i != exclude) if r is not None]

    async def context_history(self, context_id: str, limit: int = 200, *, exclude: str | None = None) -> list[Json]:
        """Every message of a context's tasks, oldest first: the conversation for the agent."""
        messages: list[Json] = []
        for record in await self.context_tasks(context_id, limit, exclude=exclude):
            messages.extend(record.task.get("history", []))
        return messages

    async def read_events(self, task_id: str, after: str = "0-0", count: int = 100) -> list[tuple[str, Json]]:
        """Events of a task after the event id ``after`` ('0-0': from the first), in order.

        An event's id is 'ms-n': when it was stored, and its number among the task's events.
        """
        first, *rows = await self.scripts.read_events({"events": self.keys.events(task_id)}, {"after": after, "count": count})
        events = []
        for n, row in enumerate(rows, start=first):
            ms, event = row.split(":", 1)  # see event_entry
            events.append((f"{ms}-{n}", model.loads(event)))
        return events

    async def last_event_id(self, task_id: str) -> str:
        """The id of a task's newest event, '0-0' when it has none."""
        last: str = await self.scripts.last_event({"events": self.keys.events(task_id)}, {})
        return last

    async def queue_length(self) -> int:
        return int(await self.redis.llen(self.keys.queue))
