"""The worker's side of the agent contract: every report becomes one atomic write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from queueapp import model, tracing
from queueapp.connection import RedisUnavailable, is_outage, redis_error_text
from queueapp.model import Json, TaskRecord
from queueapp.states import TaskState
from queueapp.store import Claim, Conflict, QueueStore, TaskNotFound

log = logging.getLogger("queueapp.worker")

T = TypeVar("T")
EventHook = Callable[[TaskRecord, Json], Awaitable[None]]
PART_KINDS = ("text", "raw", "url", "data")


class InvalidAgentResponse(Exception):
    """The agent reported something that is not a valid A2A event."""


def validate_parts(parts: Any) -> list[Json]:
    if not isinstance(parts, list) or not parts:
        raise InvalidAgentResponse("an artifact needs a non-empty list of parts")
    for part in parts:
        if not isinstance(part, dict) or sum(1 for kind in PART_KINDS if kind in part) != 1:
            raise InvalidAgentResponse(f"a part must have exactly one of {', '.join(PART_KINDS)}: {str(part)[:200]}")
        if "text" in part and not isinstance(part["text"], str):
            raise InvalidAgentResponse("a text part's text must be a string")
    return parts


class OutageTooLong(RedisUnavailable):
    """Redis stayed unavailable (or refused writes) for longer than a worker waits for it.

    Raised only by :func:`through_outage`, so that a task's runner tells an outage of the
    queue's own Redis (the task is left to its lease) from an error of the agent's (the task fails).
    """


async def through_outage(call: Callable[[int], Awaitable[T]], patience: float, what: str) -> T:
    """Call ``call(attempt_number)``, retrying while Redis is unreachable or refuses writes
    (``is_outage``: full, say), for up to ``patience`` s, then raise :class:`OutageTooLong`.

    Without it a task whose work is done would wait out its lease and run again.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay, number = 0.1, 1
    while True:
        try:
            return await call(number)
        except Exception as exc:
            if not is_outage(exc):
                raise
            if loop.time() + delay > deadline:
                raise OutageTooLong(f"Redis unavailable for longer than {patience:g}s while {what}: {redis_error_text(exc)}") from exc
            log.warning("Redis unavailable while %s, retrying in %.1fs, error=%s", what, delay, redis_error_text(exc))
            await asyncio.sleep(delay)
            delay, number = min(delay * 2, 2.0), number + 1


class ClaimUpdater:
    """Implements :class:`queueapp.agents.TaskUpdater` for one claimed task."""

    def __init__(
        self, store: QueueStore, claim: Claim, hooks: list[EventHook] | None = None, *, write_patience: float = 30.0, on_end_write: Callable[[bool], None] | None = None
    ):
        self.store = store
        self.claim = claim
        self.hooks = hooks or []
        self.write_patience = write_patience
        # Told True as the agent's last word (an end or a question) starts its write, False once it is done.
        self.on_end_write = on_end_write
        self.final_state: TaskState | None = None

    @property
    def record(self) -> TaskRecord:
        return self.claim.record

    @property
    def ended(self) -> bool:
        return self.final_state is not None

    def _check_open(self) -> None:
        if self.final_state is not None:
            raise InvalidAgentResponse(f"the agent reported after ending the task as {self.final_state.value}")

    async def _emit(self, event: Json) -> None:
        for hook in self.hooks:
            try:
                await hook(self.record, event)
            except Exception:  # a hook (push delivery) must never fail the task
                log.exception("Event hook failed, task_id=%s", self.record.id)

    def _agent_message(self, text: str) -> Json:
        return model.agent_text(text, self.record.id, self.record.context_id)

    async def claimed(self) -> None:
        """Tell the hooks the task is working: the claim itself recorded it (lease.lua)."""
        await self._emit(model.status_event(self.record.task))

    async def working(self, text: str | None = None, *, progress: float | None = None) -> None:
        self._check_open()
        msg = self._agent_message(text) if text else None
        if msg is not None and progress is not None:
            msg["metadata"] = {"progress": round(progress, 3)}
        self.record.task["status"] = model.status(TaskState.WORKING, model.now_ms(), msg)
        # The status message lives in the task JSON; the hash carries progress for redis-cli.
        extra = {"progress": round(progress, 3)} if progress is not None else None
        event = model.status_event(self.record.task)
        await self._write(lambda: self.store.update(self.record, event, token=self.claim.token, extra=extra))
        await self._emit(event)

    async def artifact(self, parts: list[Json], *, name: str | None = None, artifact_id: str | None = None, append: bool = False, last_chunk: bool = True) -> str:
        self._check_open()
        artifact_id = artifact_id or model.new_id()
        artifact: Json = {"artifactId": artifact_id, "parts": validate_parts(parts)}
        if name:
            artifact["name"] = name
        model.merge_artifact(self.record.task, artifact, append)
        event = model.artifact_event(self.record.task, artifact, append, last_chunk)
        await self._write(lambda: self.store.update(self.record, event, token=self.claim.token))
        await self._emit(event)
        return artifact_id

    async def _end(self, state: TaskState, text: str | None, *, message_event: bool = False) -> None:
        self._check_open()
        msg = self._agent_message(text) if text else None
        if msg is not None:
            self.record.task.setdefault("history", []).append(msg)
        self.record.task["status"] = model.status(state, model.now_ms(), msg)
        event = {"message": msg} if message_event else model.status_event(self.record.task)
        self.final_state = state
        if self.on_end_write is not None:
            self.on_end_write(True)
        try:
            if state.is_terminal:
                error = text if state is TaskState.FAILED and text else None
                await self._write(lambda: self.store.finish(self.record, event, token=self.claim.token, error=error))
            else:
                await self._write(lambda: self.store.update(self.record, event, token=self.claim.token, action="release"))
        finally:
            if self.on_end_write is not None:
                self.on_end_write(False)
        await self._emit(event)

    async def _write(self, write: Callable[[], Awaitable[Any]]) -> None:
        """Write through a Redis outage of up to the lease (see :func:`through_outage`).

        A retry whose earlier attempt landed but lost its reply either repeats the event
        (the task JSON is the same; followers may see the event twice) or, for a finish,
        finds the task gone from the active set: both are taken as success.
        """

        async def attempt(number: int) -> None:
            try:
                await write()
            except (Conflict, TaskNotFound):
                if number == 1:
                    raise

        with tracing.span("a2a.transition", attributes={"a2a.task.state": self.record.task["status"]["state"]}):
            await through_outage(attempt, self.write_patience, f"recording task {self.record.id}")

    async def complete(self, text: str | None = None) -> None:
        await self._end(TaskState.COMPLETED, text)

    async def fail(self, reason: str) -> None:
        await self._end(TaskState.FAILED, reason)

    async def reject(self, reason: str) -> None:
        await self._end(TaskState.REJECTED, reason)

    async def require_input(self, question: str) -> None:
        await self._end(TaskState.INPUT_REQUIRED, question)

    async def reply(self, text: str) -> None:
        await self._end(TaskState.COMPLETED, text, message_event=True)

    async def cancel(self, reason: str) -> None:
        await self._end(TaskState.CANCELED, reason)
