"""The worker registry as operators see it: who is alive, and what each one runs.

A worker's heartbeat (heartbeat.lua) scores it in ``workers`` and stores what it runs. A
worker that died stops heartbeating: once its last heartbeat is older than the lease, it
can hold no task any more (its leases ran out), so it is pruned and no longer listed.
A task is shown under the worker that holds its claim now (the active hash's ``worker``),
never under two: a worker that lost a task but has not yet noticed still lists it.

Part of the store: only :class:`QueueStore` calls these, with its client and key names
(``store.prune_dead_workers``, ``store.stats``); everyone else goes through the store.
"""

from __future__ import annotations

import logging
from typing import Any

from queueapp import model
from queueapp.model import Json
from queueapp.store.keys import Keys

log = logging.getLogger("queueapp.worker")


async def prune_dead(client: Any, k: Keys, lease_seconds: float) -> list[str]:
    """Remove the workers whose last heartbeat is older than the lease; returns their ids."""
    cutoff = model.now_ms() - int(lease_seconds * 1000)
    dead = await client.zrangebyscore(k.workers, "-inf", f"({cutoff}")
    if not dead:
        return []
    pipe = client.pipeline(transaction=True)
    # Only entries still that old: a worker that came back in the meantime stays.
    pipe.zremrangebyscore(k.workers, "-inf", f"({cutoff}")
    for worker_id in dead:
        pipe.delete(k.worker(worker_id))
    await pipe.execute()
    for worker_id in dead:
        log.warning("Worker pruned: no heartbeat within the lease, worker_id=%s, lease=%gs", worker_id, lease_seconds)
    return list(dead)


async def describe(client: Any, k: Keys, rows: list[tuple[str, float]], now: int) -> list[Json]:
    """Each live worker with its details, its ``tasks`` limited to those it still holds."""
    if not rows:
        return []
    pipe = client.pipeline(transaction=False)
    for worker_id, _ in rows:
        pipe.hget(k.worker(worker_id), "info")
    infos = [model.loads(info) if info else {} for info in await pipe.execute()]
    holders = await _holders(client, k, {task_id for info in infos for task_id in info.get("tasks", [])})
    result = []
    for (worker_id, seen), details in zip(rows, infos, strict=True):
        if "tasks" in details:
            details["tasks"] = [t for t in details["tasks"] if holders.get(t) == worker_id]
        result.append({"id": worker_id, "last_seen_ms": int(seen), "age_s": (now - seen) / 1000, **details})
    return result


async def _holders(client: Any, k: Keys, task_ids: set[str]) -> dict[str, Any]:
    if not task_ids:
        return {}
    ordered = sorted(task_ids)
    pipe = client.pipeline(transaction=False)
    for task_id in ordered:
        pipe.hget(k.active(task_id), "worker")
    return dict(zip(ordered, await pipe.execute(), strict=True))
