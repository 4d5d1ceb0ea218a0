"""The queue service: the Redis data model and its atomic transitions.

The endpoint, the worker, the dashboard and the commands all go through
:class:`QueueStore`. Python decides what a task becomes (its new JSON and state);
each Lua script makes the change in one atomic step, guarded by the claim token
(worker writes) or by the revision the caller read (everyone else).
It knows nothing about HTTP or A2A wire versions.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from queueapp import histogram, model, owners
from queueapp import workers as registry
from queueapp.ha import subscribe
from queueapp.keys import Keys
from queueapp.model import Json, TaskRecord
from queueapp.scripts import Scripts
from queueapp.scripts import source as script_source
from queueapp.states import FINISHED, TERMINAL, TaskState

log = logging.getLogger("queueapp.store")

EVENTS_MAXLEN = 1000
STATS_TTL_S = 2 * 3600
CONFLICT_RETRIES = 20
REPLICA_ACK_TIMEOUT_MS = 1000
CURSOR_SCORE = re.compile(r"-?[0-9]+(\.[0-9]{1,3})?")


class StoreError(Exception):
    """Base of the queue service's errors."""

    default_message = "queue error"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)


class TaskNotFound(StoreError):
    default_message = "task not found"


class TaskNotCancelable(StoreError):
    default_message = "task is already finished and cannot be canceled"


class InvalidTransition(StoreError):
    default_message = "the task is not in a state that allows this"


class Conflict(StoreError):
    default_message = "the task changed while it was being updated"


class ContextNotAvailable(StoreError):
    default_message = "the context is not one of this caller's contexts"


class NotReplicated(StoreError):
    default_message = "Redis could not confirm the write on enough replicas; retry with the same messageId"


@dataclass
class Claim:
    """A task a worker holds: only the holder of ``token`` may write to it."""

    record: TaskRecord
    token: str
    worker_id: str


@dataclass
class Page:
    items: list[Any]
    next_cursor: str = ""
    total: int = 0


def valid_cursor(cursor: str) -> bool:
    """Is ``cursor`` of the form a page's ``next_cursor`` has (``score:id``, a score in ms with up to three decimals)?"""
    score, sep, member = cursor.partition(":")
    return bool(sep and member) and CURSOR_SCORE.fullmatch(score) is not None


@dataclass
class Stats:
    queue_length: int
    active: int
    by_state: dict[str, int]
    totals: dict[str, int]
    per_minute: list[Json] = field(default_factory=list)
    workers: list[Json] = field(default_factory=list)
    paused: bool = False


def _check(result: list[Any], task_id: str) -> None:
    code = int(result[0])
    if code == -1:
        raise TaskNotFound(f"task {task_id} not found")
    if code == -2:
        raise Conflict(f"task {task_id} changed while it was being updated")


def _guard(record: TaskRecord, token: str | None, unclaimed: str = "rev") -> tuple[str, str]:
    """The guard of a write (``guard_ok`` in ``_common.lua``): the claim token, else the revision read."""
    return ("token", token) if token else (unclaimed, record.rev)


def _pairs(extra: dict[str, Any] | None) -> list[str]:
    """Extra hash fields as the scripts take them: field, value, field, value..."""
    return [str(v) for item in (extra or {}).items() for v in item]


def _score(score: float) -> str:
    """An index score as Redis reads it back exactly: ms with three decimals."""
    return f"{score:.3f}"


class QueueStore:
    def __init__(
        self, redis: Any, keys: Keys | None = None, *, idempotency_ttl: float = 86400, events_ttl: float = 600, replica_acks: int = 0, worker_lease: float = 30.0
    ):
        self.redis = redis
        self.worker_lease = worker_lease  # a worker not heard from within it is dead
        self.replica_acks = replica_acks
        self.keys = keys or Keys()
        self.scripts = Scripts(redis)
        self.idempotency_ttl_ms = int(idempotency_ttl * 1000)
        self.events_ttl_ms = int(events_ttl * 1000)

    @classmethod
    def from_config(cls, redis: Any, config: Any) -> QueueStore:
        return cls(
            redis,
            Keys(config.queue_key_prefix),
            idempotency_ttl=config.idempotency_ttl,
            events_ttl=config.events_ttl,
            replica_acks=config.queue_replica_acks,
            worker_lease=config.worker_lease,
        )

    # ---- creating and reading ----------------------------------------------------------

    async def create_task(
        self,
        user_message: Json,
        *,
        context_id: str | None = None,
        task_id: str | None = None,
        identity: str | None = None,
        metadata: Json | None = None,
        context_must_exist: bool = False,
        trace: str | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Create a task from a user message and enqueue it.

        Returns the record and whether it is new: a message id the same identity sent before
        in the same context (within the idempotency TTL) returns the task it created the
        first time. The task, and a context it starts, belong to ``identity``. A context that
        exists and belongs to another identity (or to none, when ``identity`` is set) raises
        :class:`ContextNotAvailable`; so does one that does not exist, with
        ``context_must_exist``. ``trace``, a W3C ``traceparent``, is kept with the task so
        that its worker continues the caller's trace (queueapp/tracing.py).
        """
        k = self.keys
        context_id = context_id or model.new_id()
        task_id = task_id or model.new_id()
        ms = model.now_ms()
        user_message = {**user_message, "taskId": task_id, "contextId": context_id}
        task = model.new_task(task_id, context_id, user_message, ms, metadata)
        message_id = user_message.get("messageId", "")
        ttl = self.idempotency_ttl_ms if message_id else 0
        message_key = k.message_id(context_id, message_id, identity)
        result = await self._create(
            keys=[
                k.active(task_id), k.deadletter(task_id), k.queue, k.context(context_id), k.index_context(context_id),
                k.contexts, k.index_active, k.counts, k.events(task_id), message_key, k.index_seq,
                k.context_owners, k.index_owner_active(identity),
            ],
            args=[
                task_id, context_id, model.pack_task(task), ms, ttl, model.dumps({"task": task}), k.notify, EVENTS_MAXLEN,
                identity or "", "1" if context_must_exist else "0", *(("trace", trace) if trace else ()),
            ],
        )
        code = int(result[0])
        if code == 1:
            log.info("Task enqueued for processing, task_id=%s, queue_length=%s", task_id, result[2])
            record = TaskRecord(
                id=task_id, context_id=context_id, state=TaskState.SUBMITTED, task=task, rev="1", attempts=0,
                created_ms=ms, updated_ms=ms, enqueued_ms=ms, identity=identity, trace=trace,
            )
            return record, True
        if code == 0:
            existing = await self.get(result[1])
            if existing is not None:
                return existing, False
            # The first task is gone (deleted); forget the message id and create anew.
            await self.redis.delete(message_key)
            return await self.create_task(
                user_message, context_id=context_id, identity=identity, metadata=metadata, context_must_exist=context_must_exist, trace=trace
            )
        if code == -3:
            raise ContextNotAvailable(f"context {context_id} is not one of this caller's contexts")
        raise Conflict(f"task id {task_id} already exists")

    async def _create(self, keys: list[str], args: list[Any]) -> Any:
        """Run the create script; with ``replica_acks``, acknowledge only once that many replicas have it.

        WAIT counts the writes of its own connection, so it goes in one pipeline with the script.
        A failover then promotes a replica that holds every acknowledged task (docs/redis-deployments.md).
        """
        if not self.replica_acks:
            return await self.scripts.create(keys=keys, args=args)
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("EVAL", script_source("create"), len(keys), *keys, *args)
        pipe.execute_command("WAIT", self.replica_acks, REPLICA_ACK_TIMEOUT_MS)
        result, replicas = await pipe.execute()
        if int(replicas) < self.replica_acks:
            raise NotReplicated(f"{replicas} of {self.replica_acks} replicas confirmed the task within {REPLICA_ACK_TIMEOUT_MS} ms; retry with the same messageId")
        return result

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

    # ---- claiming (worker) ---------------------------------------------------------------

    async def take(self, count: int) -> tuple[list[str], int]:
        """Move up to ``count`` waiting ids into processing, oldest first.

        Returns (ids, queue length left); the length is -1 while the queue is paused.
        """
        k = self.keys
        result = await self.scripts.take(keys=[k.queue, k.processing, k.paused], args=[count])
        return list(result[1:]), int(result[0])

    async def wait_take(self, timeout: float) -> str | None:
        """Block until one id can be moved from the queue into processing (BLMOVE)."""
        return await self.redis.blmove(self.keys.queue, self.keys.processing, timeout, "RIGHT", "LEFT")

    async def lease(self, task_ids: list[str], worker_id: str, lease_seconds: float, tokens: dict[str, str] | None = None) -> list[Claim]:
        """Claim ids that are in processing and mark them working; returns the ones that were waiting tasks.

        Calling it again with the same ``tokens`` returns the same claims, so a caller whose
        reply was lost can ask again instead of stranding the tasks for a lease period.
        """
        if not task_ids:
            return []
        k = self.keys
        ms = model.now_ms()
        tokens = tokens or {task_id: model.new_id() for task_id in task_ids}
        args: list[Any] = [ms, ms + int(lease_seconds * 1000), worker_id, model.iso_from_ms(ms), k.notify, EVENTS_MAXLEN]
        per_task: list[str] = []
        for task_id in task_ids:
            args += [task_id, tokens[task_id]]
            per_task += [k.active(task_id), k.events(task_id), k.push_configs(task_id)]
        rows = await self.scripts.lease(keys=[k.processing, k.leases, k.limbo, k.counts, k.index_active, k.queue, k.index_seq, k.paused, *per_task], args=args)
        claims = []
        for task_id, task_json, rev, attempts, enqueued_ms, context_id, status_json, has_push, identity, trace in rows:
            task = model.unpack_task(task_json, task_id, context_id, status_json)
            record = TaskRecord(
                id=task_id, context_id=context_id, state=model.task_state(task), task=task, rev=str(rev), attempts=int(attempts),
                created_ms=0, updated_ms=ms, enqueued_ms=int(enqueued_ms) if enqueued_ms else None, started_ms=ms, worker=worker_id,
                identity=identity or None, has_push_configs=bool(has_push), trace=trace or None,
            )
            claims.append(Claim(record, tokens[task_id], worker_id))
        return claims

    async def heartbeat(self, worker_id: str, info: Json, claims: list[Claim], lease_seconds: float) -> tuple[list[str], list[str]]:
        """Extend this worker's leases. Returns (ids it lost, ids whose cancellation was asked)."""
        k = self.keys
        ms = model.now_ms()
        args: list[Any] = [worker_id, ms, ms + int(lease_seconds * 1000), model.dumps(info), max(int(lease_seconds * 3), 10)]
        for claim in claims:
            args += [claim.record.id, claim.token]
        lost, cancel = await self.scripts.heartbeat(
            keys=[k.workers, k.worker(worker_id), k.leases, k.cancels, *(k.active(c.record.id) for c in claims)], args=args
        )
        return list(lost), list(cancel)

    async def queue_length(self) -> int:
        return int(await self.redis.llen(self.keys.queue))

    async def prune_dead_workers(self, lease_seconds: float) -> list[str]:
        """Forget the workers whose last heartbeat is older than the lease; returns their ids."""
        return await registry.prune_dead(self.redis, self.keys, lease_seconds)

    async def remove_worker(self, worker_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.keys.workers, worker_id)
        pipe.delete(self.keys.worker(worker_id))
        await pipe.execute()

    # ---- recording changes ---------------------------------------------------------------

    def _update_keys(self, record: TaskRecord) -> list[str]:
        k = self.keys
        return [
            k.active(record.id), k.index_active, k.index_context(record.context_id), k.contexts,
            k.counts, k.events(record.id), k.queue, k.leases, k.processing, k.push_configs(record.id), k.index_seq,
            k.index_owner_active(record.identity),
        ]

    async def update(
        self,
        record: TaskRecord,
        event: Json | None,
        *,
        token: str | None = None,
        action: str = "",
        extra: dict[str, Any] | None = None,
    ) -> TaskRecord:
        """Store ``record.task`` (already changed by the caller) on an unfinished task.

        Guarded by ``token`` when a worker writes, else by ``record.rev``. ``action`` may
        release the claim (``release``) or put the task back on the queue (``requeue``,
        ``requeue_front``). Raises :class:`Conflict` if the guard fails.
        """
        state = model.task_state(record.task)
        guard, pairs = _guard(record, token), _pairs(extra)
        result = await self.scripts.update(
            keys=self._update_keys(record),
            args=[record.id, *guard, state.value, model.pack_task(record.task), model.now_ms(), model.dumps(event) if event else "", action, self.keys.notify, EVENTS_MAXLEN, *pairs],
        )
        _check(result, record.id)
        record.rev, record.state, record.has_push_configs = str(result[1]), state, bool(result[3])
        return record

    async def finish(
        self, record: TaskRecord, event: Json, *, token: str | None = None, extra: dict[str, Any] | None = None, flag_if_claimed: bool = False
    ) -> TaskRecord:
        """Move a task whose ``record.task`` now has a terminal status into the history.

        With ``flag_if_claimed`` (a cancel request), a task a worker holds is not finished but
        flagged for its worker, in the same step: ``record.finished`` stays False.
        """
        k = self.keys
        state = model.task_state(record.task)
        if state not in TERMINAL:
            raise InvalidTransition(f"finish needs a terminal state, not {state.value}")
        ms = model.now_ms()
        wait_ms = (record.started_ms - record.enqueued_ms) if record.started_ms and record.enqueued_ms else -1
        run_ms = (ms - record.started_ms) if record.started_ms else -1
        guard, pairs = _guard(record, token, "cancel" if flag_if_claimed else "rev"), _pairs(extra)
        result = await self.scripts.finish(
            keys=[
                k.active(record.id), k.deadletter(record.id), k.index_active, k.index_context(record.context_id),
                k.contexts, k.counts, k.events(record.id), k.queue, k.leases, k.processing, k.cancels,
                k.index_history_state(state.value), k.stats_minute(ms // 60000), k.limbo,
                k.push_configs(record.id), k.index_seq, k.index_owner_active(record.identity),
                k.index_owner_history_state(record.identity, state.value),
            ],
            args=[
                record.id, *guard, state.value, model.pack_task(record.task), ms, model.dumps(event), k.notify, EVENTS_MAXLEN,
                self.events_ttl_ms, STATS_TTL_S, wait_ms, run_ms, histogram.field(histogram.WAIT, wait_ms),
                histogram.field(histogram.RUN, run_ms), *pairs,
            ],
        )
        _check(result, record.id)
        if int(result[0]) == 2:
            return record
        record.state, record.finished, record.finished_ms, record.has_push_configs = state, True, ms, bool(result[2])
        return record

    async def _modify(self, task_id: str, change: Any) -> TaskRecord:
        """Read, change and write back with the revision guard, retrying on conflicts."""
        for _ in range(CONFLICT_RETRIES):
            record = await self.require(task_id)
            try:
                return await change(record)
            except Conflict:
                continue
        raise Conflict(f"task {task_id} kept changing; try again")

    # ---- actions shared by the endpoint, the dashboard and the commands --------------------

    async def request_cancel(self, task_id: str, reason: str = "Canceled by request") -> TaskRecord:
        """Cancel a task.

        A waiting or interrupted task is canceled at once, atomically (it leaves the queue in
        the same step). A running task is flagged; its worker sees the flag on its next
        heartbeat and ends it. Returns the record as it is after the call.
        """

        async def change(record: TaskRecord) -> TaskRecord:
            if record.finished or record.state in TERMINAL:
                raise TaskNotCancelable(f"task {task_id} is already {record.state.value}")
            return await self.finish_unclaimed(record, TaskState.CANCELED, reason, flag_if_claimed=True)

        return await self._modify(task_id, change)

    async def finish_unclaimed(self, record: TaskRecord, state: TaskState, reason: str, *, flag_if_claimed: bool = False) -> TaskRecord:
        """End a task no worker holds (or whose worker is gone), guarded by its revision.

        With ``flag_if_claimed``, a task a worker holds is flagged for it instead (see :meth:`finish`).
        """
        ms = model.now_ms()
        before = record.task.get("status")
        record.task["status"] = model.status(state, ms, model.agent_text(reason, record.id, record.context_id))
        extra = {"error": reason} if state is TaskState.FAILED else None
        record = await self.finish(record, model.status_event(record.task), extra=extra, flag_if_claimed=flag_if_claimed)
        if not record.finished:  # flagged: its worker ends it
            record.task["status"] = before
        return record

    async def force_cancel(self, task_id: str, reason: str = "Canceled by request") -> TaskRecord:
        """Cancel a claimed task without its worker (used when the worker does not answer)."""

        async def change(record: TaskRecord) -> TaskRecord:
            if record.finished:
                return record
            return await self.finish_unclaimed(record, TaskState.CANCELED, reason)

        return await self._modify(task_id, change)

    async def continue_task(self, task_id: str, user_message: Json) -> TaskRecord:
        """Add the user's reply to an interrupted task and put it back on the queue."""

        async def change(record: TaskRecord) -> TaskRecord:
            if record.finished:
                raise InvalidTransition(f"task {task_id} is {record.state.value}; it cannot take more messages")
            if not record.state.is_interrupted:
                raise InvalidTransition(f"task {task_id} is {record.state.value}, not waiting for input")
            ms = model.now_ms()
            record.task.setdefault("history", []).append({**user_message, "taskId": task_id, "contextId": record.context_id})
            record.task["status"] = model.status(TaskState.SUBMITTED, ms)
            return await self.update(record, model.status_event(record.task), action="requeue")

        return await self._modify(task_id, change)

    async def retry(self, task_id: str) -> TaskRecord:
        """Put a failed or canceled (or any finished) task back on the queue."""
        k = self.keys

        async def change(record: TaskRecord) -> TaskRecord:
            if not record.finished:
                raise InvalidTransition(f"task {task_id} is {record.state.value}; only finished tasks can be retried")
            ms = model.now_ms()
            task = record.task
            task["status"] = model.status(TaskState.SUBMITTED, ms)
            result = await self.scripts.retry(
                keys=[
                    k.deadletter(task_id), k.active(task_id), k.queue, k.index_active, k.index_context(record.context_id), k.contexts,
                    k.counts, k.events(task_id), k.index_seq, k.index_owner_active(record.identity),
                    *k.index_history_states, *k.index_owner_history_states(record.identity),
                ],
                args=[task_id, record.rev, model.pack_task(task), ms, model.dumps(model.status_event(task)), k.notify, EVENTS_MAXLEN],
            )
            _check(result, task_id)
            log.info("Task requeued for retry, task_id=%s, queue_length=%s", task_id, result[1])
            return await self.require(task_id)

        return await self._modify(task_id, change)

    async def delete(self, task_id: str, *, only_finished: bool = False) -> TaskState:
        """Remove a task and every trace of it. Returns the state it had."""
        record = await self.require(task_id)
        k = self.keys
        result = await self.scripts.delete(
            keys=[
                k.active(task_id), k.deadletter(task_id), k.context(record.context_id), k.index_context(record.context_id),
                k.contexts, k.counts, k.events(task_id), k.push_configs(task_id), k.queue, k.leases, k.processing, k.cancels,
                k.context_owners, k.index_active, *k.index_history_states,
                k.index_owner_active(record.identity), *k.index_owner_history_states(record.identity),
            ],
            args=[task_id, record.context_id, k.notify, "1" if only_finished else "0"],
        )
        if int(result[0]) == -1:
            raise TaskNotFound(f"task {task_id} not found")
        if int(result[0]) == -3:
            raise InvalidTransition(f"task {task_id} is not finished; cancel it first")
        return TaskState.parse(result[1])

    async def pause(self, paused: bool) -> None:
        """Stop (or resume) claims; publishes a notice like every transition's (``pause.lua``)."""
        await self.scripts.pause(keys=[self.keys.paused, self.keys.queue], args=["1" if paused else "0", self.keys.notify])

    async def is_paused(self) -> bool:
        return bool(await self.redis.exists(self.keys.paused))

    # ---- recovery ------------------------------------------------------------------------

    async def drop_lease(self, task_id: str) -> None:
        """Forget the lease of a task that is gone or finished (the reaper's clean-up)."""
        await self.redis.zrem(self.keys.leases, task_id)

    async def expired_leases(self, limit: int = 100) -> list[str]:
        return list(await self.redis.zrangebyscore(self.keys.leases, "-inf", model.now_ms(), start=0, num=limit))

    async def recover_processing(self, grace_seconds: float) -> list[str]:
        k = self.keys
        return list(await self.scripts.recover(keys=[k.processing, k.limbo, k.leases, k.queue], args=[model.now_ms(), int(grace_seconds * 1000)]))

    # ---- lists ---------------------------------------------------------------------------

    async def _page_from_indexes(self, indexes: list[str], cursor: str, limit: int, predicate: Any = None) -> Page:
        """Newest first from one or more sorted sets, continuing after an opaque cursor ``score:id``.

        Several indexes (every finished state, say) are merged as if they were one. Scores
        are unique within a queue (``index_score`` in ``_common.lua``: ms plus a thousandth per
        write in that ms), so the cursor names one position; should two ever tie, they come in
        reverse id order and the cursor's id breaks the tie. Reads one page from each index
        (plus what the predicate drops), never a whole index.
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
        next_cursor = ""
        if len(found) > limit:
            _, member, score = found[limit - 1]
            next_cursor = f"{_score(score)}:{member}"
        return Page([record for record, _, _ in found[:limit]], next_cursor, total)

    async def _newest_after(self, indexes: list[str], max_score: str, after: str | None, count: int) -> list[tuple[str, float]]:
        """The ``count`` newest members of the indexes together that come after the cursor."""

        async def from_one(index: str) -> list[tuple[str, float]]:
            rows: list[tuple[str, float]] = []
            offset = 0
            while len(rows) < count:
                chunk = await self.redis.zrevrangebyscore(index, max_score, "-inf", start=offset, num=count, withscores=True)
                offset += len(chunk)
                rows += [(m, s) for m, s in chunk if after is None or s < float(max_score) or m < after]
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
        if predicate is not None:
            counted = not context_id and not owner
            page.total = int(await self.redis.hget(k.counts, state.value) or 0) if counted else await self._count_in(page, indexes[0], predicate)
        return page

    async def context_owner(self, context_id: str) -> str | None:
        """The identity a context belongs to; None for one created with auth off, or unknown."""
        return await self.redis.hget(self.keys.context_owners, context_id)

    async def _count_in(self, page: Page, index: str, predicate: Any) -> int:
        ids = await self.redis.zrange(index, 0, -1)
        return sum(1 for r in await self.get_many(ids) if r is not None and predicate(r))

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

    async def list_contexts(self, *, cursor: str = "", limit: int = 50) -> Page:
        """Context ids newest activity first, with task counts and owners (None: made with auth off)."""
        k = self.keys
        total = await self.redis.zcard(k.contexts)
        offset = int(cursor or 0)
        rows = await self.redis.zrevrange(k.contexts, offset, offset + limit - 1, withscores=True)
        pipe = self.redis.pipeline(transaction=False)
        for context_id, _ in rows:
            pipe.scard(k.context(context_id))
        pipe.hmget(k.context_owners, [c for c, _ in rows] or [""])
        *counts, owners = await pipe.execute()
        items = [
            {"context_id": c, "last_activity_ms": int(s), "task_count": n, "owner": owner}
            for (c, s), n, owner in zip(rows, counts, owners[: len(rows)], strict=True)
        ]
        return Page(items, str(offset + limit) if offset + limit < total else "", total)

    # ---- stats ---------------------------------------------------------------------------

    async def stats(self, minutes: int = 60) -> Stats:
        k = self.keys
        now = model.now_ms()
        current_minute = now // 60000
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(k.queue)
        pipe.zcard(k.index_active)
        pipe.hgetall(k.counts)
        pipe.exists(k.paused)
        pipe.zrangebyscore(k.workers, now - int(self.worker_lease * 1000), "+inf", withscores=True)
        for minute in range(current_minute - minutes + 1, current_minute + 1):
            pipe.hgetall(k.stats_minute(minute))
        results = await pipe.execute()
        queue_length, active, counts, paused, workers = results[:5]
        by_state = {s.value: max(int(counts.get(s.value, 0)), 0) for s in TaskState if s is not TaskState.UNKNOWN}
        totals = {key.removeprefix("total_"): int(v) for key, v in counts.items() if key.startswith("total_")}
        per_minute = []
        for offset, row in enumerate(results[5:]):
            minute = current_minute - minutes + 1 + offset
            ran, waited = int(row.get("ran", 0)), int(row.get("waited", 0))
            wait_buckets, run_buckets = histogram.counts(row, histogram.WAIT), histogram.counts(row, histogram.RUN)
            per_minute.append(
                {
                    "minute_ms": minute * 60000,
                    **{s.value: int(row.get(s.value, 0)) for s in FINISHED},
                    "finished": sum(int(row.get(s.value, 0)) for s in FINISHED),
                    "avg_wait_ms": int(row.get("wait_ms", 0)) / waited if waited else 0,
                    "avg_run_ms": int(row.get("run_ms", 0)) / ran if ran else 0,
                    "wait_buckets": wait_buckets,
                    "run_buckets": run_buckets,
                }
            )
        worker_list = await registry.describe(self.redis, self.keys, workers, now)
        return Stats(int(queue_length), int(active), by_state, totals, per_minute, worker_list, bool(paused))

    # ---- the connection ---------------------------------------------------------------------

    async def ping(self) -> None:
        """One round trip to Redis; raises when it does not answer."""
        await self.redis.ping()

    async def server_info(self) -> Json:
        """Redis's INFO ``server`` and ``memory`` sections, merged (refused by fakeredis and some ACLs)."""
        server = await self.redis.info("server")
        memory = await self.redis.info("memory")
        return {**server, **memory}

    async def subscribe_notices(self) -> Any:
        """A pub/sub subscribed to the notify channel (a shard channel on a Cluster, see ha.py)."""
        return await subscribe(self.redis, self.keys.notify)

    async def close(self) -> None:
        await self.redis.aclose()

    # ---- retention and locks -------------------------------------------------------------

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

    async def try_lock(self, name: str, seconds: float) -> bool:
        """Take the queue-wide lock ``name`` for ``seconds`` unless someone holds it; True if taken."""
        return bool(await self.redis.set(self.keys.lock(name), "1", nx=True, px=int(seconds * 1000)))

    # ---- events --------------------------------------------------------------------------

    async def read_events(self, task_id: str, after: str = "0-0", count: int = 100) -> list[tuple[str, Json]]:
        """Events of a task after the given stream id, in order."""
        rows = await self.redis.xrange(self.keys.events(task_id), min=f"({after}" if after != "0-0" else "-", max="+", count=count)
        return [(entry_id, model.loads(fields["e"])) for entry_id, fields in rows]

    async def last_event_id(self, task_id: str) -> str:
        rows = await self.redis.xrevrange(self.keys.events(task_id), count=1)
        return rows[0][0] if rows else "0-0"

    # ---- push notification configs ------------------------------------------------------

    async def set_push_config(self, task_id: str, config_id: str, config: Json) -> None:
        await self.redis.hset(self.keys.push_configs(task_id), config_id, model.dumps(config))

    async def get_push_configs(self, task_id: str) -> dict[str, Json]:
        raw = await self.scripts.pipeline.call("HGETALL", self.keys.push_configs(task_id))
        return {config_id: model.loads(value) for config_id, value in raw.items()}

    async def delete_push_config(self, task_id: str, config_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.push_configs(task_id), config_id))
