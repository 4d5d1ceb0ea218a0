"""The retention policy, shared by ``cleanup_tasks`` and the workers' periodic cleaner.

It keeps the newest A2A_TASK_RETENTION_MAX_COMPLETED_TASKS completed tasks, the newest
A2A_TASK_RETENTION_MAX_FAILED_TASKS of each other finished state (failed, canceled,
rejected: ``states.FINISHED``), and drops any finished task older than
A2A_TASK_RETENTION_MAX_AGE. It reads only the history indexes, so it never touches waiting
or running tasks, and each removal goes through the same delete script as the dashboard's,
which leaves no id of the task in any index behind (the deletes of one batch go to Redis in
one call of it). Message-id keys are left to expire (A2A_IDEMPOTENCY_TTL): a retry that finds
one whose task is gone makes a new task.
"""

from __future__ import annotations

import asyncio
import logging

import redis

from queueapp import model
from queueapp.config import Config
from queueapp.states import FINISHED, TaskState
from queueapp.store import InvalidTransition, QueueStore, TaskNotFound

log = logging.getLogger("queueapp.retention")

# Removals in flight at once: their reads go to Redis in one pipeline and their delete
# scripts in another, instead of two round trips (and two turns of a busy worker's event
# loop) per task. Small enough that a worker's running tasks wait little for one batch.
BATCH = 50


def limits(config: Config) -> dict[TaskState, int]:
    """How many tasks of each finished state to keep."""
    return {
        state: config.task_retention_max_completed_tasks if state is TaskState.COMPLETED else config.task_retention_max_failed_tasks
        for state in FINISHED
    }


async def expired_ids(store: QueueStore, config: Config) -> dict[str, list[str]]:
    """Ids the policy would remove, by state."""
    cutoff = model.now_ms() - int(config.task_retention_max_age * 1000)
    return await store.history_beyond(limits(config), cutoff)


async def apply(store: QueueStore, config: Config, *, dry_run: bool = False) -> dict[str, int]:
    """Apply the policy once. Returns how many tasks were (or, dry, would be) removed, by state."""
    removed: dict[str, int] = {}
    for state, ids in (await expired_ids(store, config)).items():
        if dry_run:
            removed[state] = len(ids)
            continue
        count = 0
        for start in range(0, len(ids), BATCH):
            outcomes = await asyncio.gather(*(_remove(store, TaskState(state), task_id) for task_id in ids[start : start + BATCH]), return_exceptions=True)
            count += sum(1 for outcome in outcomes if outcome is True)
            failure = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
            if failure is not None:  # the rest of the batch is done; stop as a lone removal would
                raise failure
        removed[state] = count
    if removed and not dry_run:
        log.info("Retention removed tasks, %s", ", ".join(f"{state}={n}" for state, n in removed.items()))
    return removed


async def _remove(store: QueueStore, state: TaskState, task_id: str) -> bool:
    """Delete one finished task; False when it was already gone (its stale index entry is
    dropped) or retried since it was read (it is waiting again, no longer history)."""
    try:
        await store.delete(task_id, only_finished=True)
        return True
    except TaskNotFound:
        await store.forget_history_id(state, task_id)
        return False
    except InvalidTransition:
        return False


async def run_if_due(store: QueueStore, config: Config) -> dict[str, int] | None:
    """Apply the policy unless another process did so within the cleanup interval."""
    try:
        due = await store.try_lock("retention", config.task_retention_cleanup_interval)
    except redis.exceptions.OutOfMemoryError:
        # A full Redis refuses the lock (a write), not the deletes that would free it: apply
        # the policy anyway (two workers that both do remove each task once).
        due = True
    if not due:
        return None
    return await apply(store, config)
