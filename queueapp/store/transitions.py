"""Creating, changing, finishing and deleting tasks: one script call each (creates, finishes and deletes in batches)."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from queueapp import histogram, model
from queueapp.model import Json, TaskRecord
from queueapp.states import TERMINAL, TaskState
from queueapp.store.base import EVENTS_MAXLEN, REPLICA_ACK_TIMEOUT_MS, STATS_TTL_S
from queueapp.store.batch import ItemBatch
from queueapp.store.errors import Conflict, ContextNotAvailable, InvalidTransition, NotReplicated, StoreError, check
from queueapp.store.reads import Reads, event_entry
from queueapp.store.scripts import (
    CREATE,
    CreateArgs,
    CreateItemArgs,
    CreateItemKeys,
    CreateKeys,
    DeleteItemArgs,
    DeleteItemKeys,
    DeleteKeys,
    FinishArgs,
    FinishItemArgs,
    FinishItemKeys,
    FinishKeys,
    RetryArgs,
    RetryKeys,
    UpdateArgs,
    UpdateKeys,
)

log = logging.getLogger("queueapp.store")


def _guard(record: TaskRecord, token: str | None, unclaimed: str = "rev") -> tuple[str, str]:
    """The guard of a write (``guard_ok`` in ``_common.lua``): the claim token, else the revision read."""
    return ("token", token) if token else (unclaimed, record.rev)


def _pairs(extra: dict[str, Any] | None) -> list[str]:
    """Extra hash fields as the scripts take them: field, value, field, value..."""
    return [str(v) for item in (extra or {}).items() for v in item]


class Transitions(Reads):
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
        keys: CreateItemKeys = {
            "active": k.active(task_id),
            "deadletter": k.deadletter(task_id),
            "context_index": k.index_context(context_id),
            "events": k.events(task_id),
            "message_id": message_key,
            "owner_active_index": k.index_owner_active(identity),
        }
        args: CreateItemArgs = {
            "task_id": task_id,
            "context_id": context_id,
            "task_json": model.pack_task(task),
            "now_ms": ms,
            "message_id_ttl_ms": ttl,
            "event": event_entry(ms, {"task": task}),
            "owner": identity or "",
            "context_must_exist": "1" if context_must_exist else "0",
            "trace": trace or "",
        }
        result = await self._creating.add((keys, args))
        code = int(result[0])
        if code == 1:
            log.info("Task enqueued for processing, task_id=%s, queue_length=%s", task_id, result[2])
            record = TaskRecord(
                id=task_id,
                context_id=context_id,
                state=TaskState.SUBMITTED,
                task=task,
                rev="1",
                attempts=0,
                created_ms=ms,
                updated_ms=ms,
                enqueued_ms=ms,
                identity=identity,
                trace=trace,
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
        if code == -1:
            raise Conflict(f"task id {task_id} already exists")
        if code == -4:  # a damaged key broke this create (and nothing of it was kept): say so where operators look
            log.error("Task could not be created, task_id=%s: %s", task_id, result[1])
        check(result, task_id)
        raise StoreError(f"task {task_id}: unexpected reply {result!r} from the create script")

    @cached_property
    def _creating(self) -> ItemBatch[tuple[CreateItemKeys, CreateItemArgs], list[Any]]:
        return ItemBatch(self._send_creates)

    async def _send_creates(self, items: list[tuple[CreateItemKeys, CreateItemArgs]]) -> list[list[Any]]:
        """One create script call for the messages of a batch; with ``replica_acks``, answered
        only once that many replicas have them.

        WAIT counts the writes of its own connection, so it goes in one pipeline with the script.
        A failover then promotes a replica that holds every acknowledged task (docs/redis-deployments.md).
        """
        k = self.keys
        keys: CreateKeys = {"queue": k.queue, "contexts": k.contexts, "active_index": k.index_active, "counts": k.counts, "context_owners": k.context_owners}
        args: CreateArgs = {"channel": k.notify}
        if not self.replica_acks:
            rows: list[list[Any]] = await self.scripts.create(keys, args, items=items)
            return rows
        flat_keys, flat_args = CREATE.flatten(keys, args, items=items)
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("EVAL", CREATE.source, len(flat_keys), *flat_keys, *flat_args)
        pipe.execute_command("WAIT", self.replica_acks, REPLICA_ACK_TIMEOUT_MS)
        rows, replicas = await pipe.execute()
        if int(replicas) < self.replica_acks:
            raise NotReplicated(
                f"{replicas} of {self.replica_acks} replicas confirmed the task within {REPLICA_ACK_TIMEOUT_MS} ms; a retry with the same messageId"
                " and contextId finds it (a message that names no context starts a new task)"
            )
        return rows

    async def update(
        self,
        record: TaskRecord,
        event: Json | None,
        *,
        token: str | None = None,
        action: str = "",
        extra: dict[str, Any] | None = None,
        lease_expired: bool = False,
    ) -> TaskRecord:
        """Store ``record.task`` (already changed by the caller) on an unfinished task.

        Guarded by ``token`` when a worker writes, else by ``record.rev``, and with
        ``lease_expired`` (the reaper) also by the task's lease still being there and run out.
        ``action`` may release the claim (``release``) or put the task back on the queue
        (``requeue``, ``requeue_front``). Raises :class:`Conflict` if the guard fails.
        """
        state = model.task_state(record.task)
        k, ms = self.keys, model.now_ms()
        guard_kind, guard_value = _guard(record, token, "lease" if lease_expired else "rev")
        keys: UpdateKeys = {
            "active": k.active(record.id),
            "active_index": k.index_active,
            "context_index": k.index_context(record.context_id),
            "contexts": k.contexts,
            "counts": k.counts,
            "events": k.events(record.id),
            "queue": k.queue,
            "leases": k.leases,
            "processing": k.processing,
            "push_configs": k.push_configs(record.id),
            "owner_active_index": k.index_owner_active(record.identity),
        }
        args: UpdateArgs = {
            "task_id": record.id,
            "guard_kind": guard_kind,
            "guard_value": guard_value,
            "state": state.value,
            "task_json": model.pack_task(record.task),
            "now_ms": ms,
            "event": event_entry(ms, event) if event else "",
            "action": action,
            "channel": k.notify,
            "events_maxlen": EVENTS_MAXLEN,
        }
        result = await self.scripts.update(keys, args, rest=_pairs(extra))
        check(result, record.id)
        record.rev, record.state, record.has_push_configs = str(result[1]), state, bool(result[3])
        return record

    async def finish(
        self,
        record: TaskRecord,
        event: Json,
        *,
        token: str | None = None,
        error: str | None = None,
        flag_if_claimed: bool = False,
        cancel_reason: str = "",
        lease_expired: bool = False,
    ) -> TaskRecord:
        """Move a task whose ``record.task`` now has a terminal status into the history.

        With ``flag_if_claimed`` (a cancel request), a task a worker holds is not finished but
        flagged for its worker, in the same step: ``record.finished`` stays False. With
        ``lease_expired`` (the reaper), only while its lease is there and run out (see
        :meth:`update`). The finishes asked for in one turn of the event loop go to Redis as
        one script call.
        """
        k = self.keys
        state = model.task_state(record.task)
        if state not in TERMINAL:
            raise InvalidTransition(f"finish needs a terminal state, not {state.value}")
        value = state.value  # an enum's .value is a Python-level property: read it once
        ms = model.now_ms()
        wait_ms = (record.started_ms - record.enqueued_ms) if record.started_ms and record.enqueued_ms else -1
        run_ms = (ms - record.started_ms) if record.started_ms else -1
        guard_kind, guard_value = _guard(record, token, "cancel" if flag_if_claimed else "lease" if lease_expired else "rev")
        keys: FinishItemKeys = {
            "active": k.active(record.id),
            "deadletter": k.deadletter(record.id),
            "context_index": k.index_context(record.context_id),
            "events": k.events(record.id),
            "history_index": k.index_history_state(value),
            "push_configs": k.push_configs(record.id),
            "owner_active_index": k.index_owner_active(record.identity),
            "owner_history_index": k.index_owner_history_state(record.identity, value),
        }
        args: FinishItemArgs = {
            "task_id": record.id,
            "guard_kind": guard_kind,
            "guard_value": guard_value,
            "state": value,
            "task_json": model.pack_task(record.task),
            "event": event_entry(ms, event),
            "wait_ms": wait_ms,
            "run_ms": run_ms,
            "wait_bucket": histogram.field(histogram.WAIT, wait_ms),
            "run_bucket": histogram.field(histogram.RUN, run_ms),
            # A flagged cancel's reason goes to the task's worker (finish.lua, heartbeat.lua).
            "extra_json": model.dumps({"error": error}) if error else model.dumps({"cancel_reason": cancel_reason}) if cancel_reason else "{}",
            # A worker's claim knows the bookkeeping the history keeps, so the script need not read it.
            "meta_json": record.history_meta(error) if token else "",
        }
        result, finished_ms = await self._finishing.submit((keys, args))
        check(result, record.id)
        if int(result[0]) == 2:
            return record
        record.state, record.finished, record.finished_ms, record.has_push_configs = state, True, finished_ms, bool(result[2])
        return record

    async def settle_finishes(self) -> None:
        """Return once every finish asked for so far has reached Redis (a worker's shutdown
        waits for it before it gives unfinished tasks back, so that no give-back overtakes a
        finish that was already on its way)."""
        await self._finishing.settle()

    @cached_property
    def _finishing(self) -> ItemBatch[tuple[FinishItemKeys, FinishItemArgs], tuple[list[Any], int]]:
        return ItemBatch(self._send_finishes)

    async def _send_finishes(self, items: list[tuple[FinishItemKeys, FinishItemArgs]]) -> list[tuple[list[Any], int]]:
        """One finish script call for the tasks of a batch; the shared keys and time are the call's.

        (Each task's event keeps the time of its own finish, a turn of the event loop earlier at most.)
        """
        k, ms = self.keys, model.now_ms()
        keys: FinishKeys = {
            "counts": k.counts,
            "active_index": k.index_active,
            "contexts": k.contexts,
            "queue": k.queue,
            "leases": k.leases,
            "processing": k.processing,
            "processing_seen": k.processing_seen,
            "cancels": k.cancels,
            "stats_minute": k.stats_minute(ms // 60000),
        }
        args: FinishArgs = {"now_ms": ms, "channel": k.notify, "events_maxlen": EVENTS_MAXLEN, "events_ttl_ms": self.events_ttl_ms, "stats_ttl_s": STATS_TTL_S}
        rows = await self.scripts.finish(keys, args, items=items)
        return [(row, ms) for row in rows]

    async def finish_unclaimed(
        self, record: TaskRecord, state: TaskState, reason: str, *, flag_if_claimed: bool = False, lease_expired: bool = False
    ) -> TaskRecord:
        """End a task no worker holds (or whose worker is gone), guarded by its revision.

        With ``flag_if_claimed``, a task a worker holds is flagged for it instead; with
        ``lease_expired``, it ends only while its lease is there and run out (see :meth:`finish`).
        """
        ms = model.now_ms()
        before = record.task.get("status")
        record.task["status"] = model.status(state, ms, model.agent_text(reason, record.id, record.context_id))
        error = reason if state is TaskState.FAILED else None
        record = await self.finish(
            record,
            model.status_event(record.task),
            error=error,
            flag_if_claimed=flag_if_claimed,
            cancel_reason=reason if flag_if_claimed else "",
            lease_expired=lease_expired,
        )
        if not record.finished:  # flagged: its worker ends it
            record.task["status"] = before
        return record

    async def requeue_finished(self, record: TaskRecord) -> None:
        """Put a finished task whose ``record.task`` now says submitted back on the queue, guarded by its revision."""
        k, task_id, ms = self.keys, record.id, model.now_ms()
        keys: RetryKeys = {
            "deadletter": k.deadletter(task_id),
            "active": k.active(task_id),
            "queue": k.queue,
            "active_index": k.index_active,
            "context_index": k.index_context(record.context_id),
            "contexts": k.contexts,
            "counts": k.counts,
            "events": k.events(task_id),
            "owner_active_index": k.index_owner_active(record.identity),
            "history_indexes": k.index_history_states,
            "owner_history_indexes": k.index_owner_history_states(record.identity),
        }
        args: RetryArgs = {
            "task_id": task_id,
            "rev": record.rev,
            "task_json": model.pack_task(record.task),
            "now_ms": ms,
            "event": event_entry(ms, model.status_event(record.task)),
            "channel": k.notify,
            "events_maxlen": EVENTS_MAXLEN,
        }
        result = await self.scripts.retry(keys, args)
        check(result, task_id)
        log.info("Task requeued for retry, task_id=%s, queue_length=%s", task_id, result[1])

    async def delete(self, task_id: str, *, only_finished: bool = False) -> TaskState:
        """Remove a task and every trace of it. Returns the state it had.

        The deletes asked for in one turn of the event loop (a retention batch) go to Redis in
        one script call.
        """
        context_id, identity = await self.context_and_owner(task_id, finished_only=only_finished)
        k = self.keys
        keys: DeleteItemKeys = {
            "active": k.active(task_id),
            "deadletter": k.deadletter(task_id),
            "legacy_context": k.legacy_context(context_id),
            "context_index": k.index_context(context_id),
            "events": k.events(task_id),
            "push_configs": k.push_configs(task_id),
            "owner_active_index": k.index_owner_active(identity),
            "owner_history_indexes": k.index_owner_history_states(identity),
        }
        args: DeleteItemArgs = {"task_id": task_id, "context_id": context_id, "only_finished": "1" if only_finished else "0"}
        result = await self._deleting.add((keys, args))
        if int(result[0]) == -3:
            raise InvalidTransition(f"task {task_id} is not finished; cancel it first")
        check(result, task_id)
        return TaskState.parse(result[1]) if result[1] else TaskState.UNKNOWN  # no state: a damaged hash

    @cached_property
    def _deleting(self) -> ItemBatch[tuple[DeleteItemKeys, DeleteItemArgs], list[Any]]:
        return ItemBatch(self._send_deletes)

    async def _send_deletes(self, items: list[tuple[DeleteItemKeys, DeleteItemArgs]]) -> list[list[Any]]:
        """One delete script call for the tasks of a batch."""
        k = self.keys
        keys: DeleteKeys = {
            "contexts": k.contexts,
            "counts": k.counts,
            "queue": k.queue,
            "leases": k.leases,
            "processing": k.processing,
            "cancels": k.cancels,
            "context_owners": k.context_owners,
            "active_index": k.index_active,
            "history_indexes": k.index_history_states,
        }
        rows: list[list[Any]] = await self.scripts.delete(keys, {"channel": k.notify}, items=items)
        return rows
