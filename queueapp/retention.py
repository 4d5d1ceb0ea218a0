"""The retention policy, shared by ``cleanup_tasks`` and the workers' periodic cleaner.

It keeps the newest A2A_TASK_RETENTION_MAX_COMPLETED_TASKS completed tasks, the newest
A2A_TASK_RETENTION_MAX_FAILED_TASKS of each of failed, canceled and rejected, and drops
any finished task older than A2A_TASK_RETENTION_MAX_AGE. It reads only the history
indexes, so it never touches waiting or running tasks, and each removal goes through
the same delete script as the dashboard's, which leaves no id behind.
"""

from __future__ import annotations

import logging
from typing import Any

from queueapp import model
from queueapp.keys import TERMINAL_INDEX_STATES
from queueapp.store import QueueStore, TaskNotFound

log = logging.getLogger("queueapp.retention")

BATCH = 500


async def expired_ids(store: QueueStore, config: Any) -> dict[str, list[str]]:
    """Ids the policy would remove, by state."""
    k = store.keys
    cutoff = model.now_ms() - int(config.task_retention_max_age * 1000)
    pipe = store.redis.pipeline(transaction=False)
    for state in TERMINAL_INDEX_STATES:
        keep = config.task_retention_max_completed_tasks if state == "completed" else config.task_retention_max_failed_tasks
        index = k.index_history_state(state)
        pipe.zrevrange(index, keep, -1)  # beyond the newest `keep`
        pipe.zrangebyscore(index, "-inf", f"({cutoff}")  # older than the maximum age
    rows = await pipe.execute()
    result: dict[str, list[str]] = {}
    for i, state in enumerate(TERMINAL_INDEX_STATES):
        ids = list(dict.fromkeys([*rows[2 * i], *rows[2 * i + 1]]))
        if ids:
            result[state] = ids
    return result


async def apply(store: QueueStore, config: Any, *, dry_run: bool = False) -> dict[str, int]:
    """Apply the policy once. Returns how many tasks were (or, dry, would be) removed, by state."""
    removed: dict[str, int] = {}
    for state, ids in (await expired_ids(store, config)).items():
        if dry_run:
            removed[state] = len(ids)
            continue
        count = 0
        for start in range(0, len(ids), BATCH):
            for task_id in ids[start : start + BATCH]:
                try:
                    await store.delete(task_id, only_finished=True)
                    count += 1
                except TaskNotFound:
                    await store.redis.zrem(store.keys.index_history_state(state), task_id)
        removed[state] = count
    if removed and not dry_run:
        log.info("Retention removed tasks, %s", ", ".join(f"{state}={n}" for state, n in removed.items()))
    return removed


async def run_if_due(store: QueueStore, config: Any) -> dict[str, int] | None:
    """Apply the policy unless another process did so within the cleanup interval."""
    interval_ms = int(config.task_retention_cleanup_interval * 1000)
    if not await store.redis.set(store.keys.retention_lock, "1", nx=True, px=interval_ms):
        return None
    return await apply(store, config)
