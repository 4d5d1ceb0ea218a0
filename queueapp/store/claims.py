"""The worker's side: taking ids, leasing them, heartbeats, the registry and recovery."""

from __future__ import annotations

from queueapp import model
from queueapp.model import Json, TaskRecord
from queueapp.store import workers as registry
from queueapp.store.base import EVENTS_MAXLEN
from queueapp.store.reads import Reads
from queueapp.store.results import Claim
from queueapp.store.scripts import HeartbeatArgs, HeartbeatItemKeys, HeartbeatKeys, LeaseArgs, LeaseItemKeys, LeaseKeys, RecoverKeys, TaskToken


class Claims(Reads):
    async def take(self, count: int) -> tuple[list[str], int]:
        """Move up to ``count`` waiting ids into processing, oldest first.

        Returns (ids, queue length left); the length is -1 while the queue is paused.
        """
        k = self.keys
        result = await self.scripts.take({"queue": k.queue, "processing": k.processing, "paused": k.paused}, {"count": count})
        return list(result[1:]), int(result[0])

    async def wait_take(self, timeout: float) -> str | None:
        """Block until one id can be moved from the queue into processing (BLMOVE)."""
        task_id: str | None = await self.redis.blmove(self.keys.queue, self.keys.processing, timeout, "RIGHT", "LEFT")
        return task_id

    async def lease(self, task_ids: list[str], worker_id: str, lease_seconds: float, tokens: dict[str, str] | None = None) -> list[Claim]:
        """Claim ids that are in processing and mark them working; returns the ones that were waiting tasks.

        Calling it again with the same ``tokens`` returns the same claims, so a caller whose
        reply was lost can ask again instead of stranding the tasks for a lease period.
        """
        if not task_ids:
            return []
        # An id taken twice (twice on the queue) is claimed once: its second copy would come back
        # as a resend of the first claim, and the caller would run the task twice. The copy left
        # in processing is dropped by the next recovery while the task holds its lease
        # (recover.lua), or, once the task has ended, goes back to the queue and is dropped by
        # the claim that takes it.
        task_ids = list(dict.fromkeys(task_ids))
        k = self.keys
        ms = model.now_ms()
        tokens = tokens or {task_id: model.new_id() for task_id in task_ids}
        keys: LeaseKeys = {
            "processing": k.processing,
            "leases": k.leases,
            "processing_seen": k.processing_seen,
            "counts": k.counts,
            "active_index": k.index_active,
            "queue": k.queue,
            "paused": k.paused,
        }
        args: LeaseArgs = {
            "now_ms": ms,
            "deadline_ms": ms + int(lease_seconds * 1000),
            "worker_id": worker_id,
            "now_iso": model.iso_from_ms(ms),
            "channel": k.notify,
            "events_maxlen": EVENTS_MAXLEN,
        }
        items: list[tuple[LeaseItemKeys, TaskToken]] = [
            ({"active": k.active(i), "events": k.events(i), "push_configs": k.push_configs(i)}, {"task_id": i, "token": tokens[i]}) for i in task_ids
        ]
        rows = await self.scripts.lease(keys, args, items=items)
        claims = []
        for task_id, task_json, rev, attempts, enqueued_ms, context_id, status_json, has_push, identity, trace, created_ms, started_ms in rows:
            task = model.unpack_task(task_json, task_id, context_id, status_json)
            started = int(started_ms) if started_ms else ms  # a resent claim's is the first call's
            record = TaskRecord(
                id=task_id,
                context_id=context_id,
                state=model.task_state(task),
                task=task,
                rev=str(rev),
                attempts=int(attempts),
                created_ms=int(created_ms or 0),
                updated_ms=started,
                enqueued_ms=int(enqueued_ms) if enqueued_ms else None,
                started_ms=started,
                worker=worker_id,
                identity=identity or None,
                has_push_configs=bool(has_push),
                trace=trace or None,
            )
            claims.append(Claim(record, tokens[task_id], worker_id))
        return claims

    async def heartbeat(self, worker_id: str, info: Json, claims: list[Claim], lease_seconds: float) -> tuple[list[str], dict[str, str]]:
        """Extend this worker's leases. Returns (ids it lost, {id whose cancellation was asked: the reason given, or ''})."""
        k = self.keys
        ms = model.now_ms()
        keys: HeartbeatKeys = {"workers": k.workers, "worker": k.worker(worker_id), "leases": k.leases, "cancels": k.cancels}
        args: HeartbeatArgs = {
            "worker_id": worker_id,
            "now_ms": ms,
            "deadline_ms": ms + int(lease_seconds * 1000),
            "info_json": model.dumps(info),
            "worker_ttl_s": max(int(lease_seconds * 3), 10),
        }
        items: list[tuple[HeartbeatItemKeys, TaskToken]] = [({"active": k.active(c.record.id)}, {"task_id": c.record.id, "token": c.token}) for c in claims]
        lost, cancel, reasons = await self.scripts.heartbeat(keys, args, items=items)
        return list(lost), dict(zip(cancel, reasons, strict=True))

    async def prune_dead_workers(self, lease_seconds: float) -> list[str]:
        """Forget the workers whose last heartbeat is older than the lease; returns their ids."""
        return await registry.prune_dead(self.redis, self.keys, lease_seconds)

    async def remove_worker(self, worker_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.keys.workers, worker_id)
        pipe.delete(self.keys.worker(worker_id))
        await pipe.execute()

    async def pause(self, paused: bool) -> None:
        """Stop (or resume) claims; publishes a notice like every transition's (``pause.lua``)."""
        k = self.keys
        await self.scripts.pause({"paused": k.paused, "queue": k.queue}, {"paused": "1" if paused else "0", "channel": k.notify})

    async def is_paused(self) -> bool:
        return bool(await self.redis.exists(self.keys.paused))

    async def drop_lease(self, task_id: str) -> None:
        """Forget the lease of a task that is gone or finished (the reaper's clean-up)."""
        await self.redis.zrem(self.keys.leases, task_id)

    async def expired_leases(self, limit: int = 100) -> list[str]:
        return list(await self.redis.zrangebyscore(self.keys.leases, "-inf", model.now_ms(), start=0, num=limit))

    async def recover_processing(self, grace_seconds: float) -> list[str]:
        k = self.keys
        keys: RecoverKeys = {"processing": k.processing, "processing_seen": k.processing_seen, "leases": k.leases, "queue": k.queue}
        return list(await self.scripts.recover(keys, {"now_ms": model.now_ms(), "grace_ms": int(grace_seconds * 1000)}))
