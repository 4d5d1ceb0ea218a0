"""What retention reads and forgets, and the owner backfill of older data."""

from __future__ import annotations

from queueapp.states import TaskState
from queueapp.store import owners
from queueapp.store.reads import Reads


class Retention(Reads):
    async def history_beyond(self, keep: dict[TaskState, int], cutoff_ms: int) -> dict[str, list[str]]:
        """Finished ids past a limit, by state: all but the newest ``keep[state]``, and any finished before ``cutoff_ms``."""
        pipe = self.redis.pipeline(transaction=False)
        for state, count in keep.items():
            index = self.keys.index_history_state(state.value)
            pipe.zrevrange(index, count, -1)  # beyond the newest `count`
            pipe.zrangebyscore(index, "-inf", f"({cutoff_ms}")  # older than the cutoff
        rows = await pipe.execute()
        result: dict[str, list[str]] = {}
        for i, state in enumerate(keep):
            ids = list(dict.fromkeys([*rows[2 * i], *rows[2 * i + 1]]))
            if ids:
                result[state.value] = ids
        return result

    async def forget_history_id(self, state: TaskState, task_id: str) -> None:
        """Drop an id whose task is gone from its history index."""
        await self.redis.zrem(self.keys.index_history_state(state.value), task_id)

    async def backfill_owners(self) -> int:
        """Put owned tasks stored before tasks had owners into their owners' indexes (``owners.py``)."""
        return await owners.backfill(self.redis, self.keys, self.get_many)
