"""Running one claimed task: the agent, its time limit, cancellation and failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from queueapp import model, tracing
from queueapp.agents.base import Agent, RunContext
from queueapp.connection import redis_error_text
from queueapp.model import Json
from queueapp.states import TaskState
from queueapp.store import Claim, Conflict, QueueStore, TaskNotFound
from queueapp.worker.updater import ClaimUpdater, EventHook, InvalidAgentResponse, OutageTooLong, through_outage

log = logging.getLogger("queueapp.worker")


@dataclass
class RunningTask:
    claim: Claim
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    asyncio_task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    lost: bool = False
    returning: bool = False
    done: bool = False  # a flag only (nothing waits for it): an Event per task cost 0.6 us
    # The agent's end is being written: while the write is in flight its slot serves the
    # next claim. An agent that goes on working after its end counts again once it lands.
    ending: bool = False
    on_ending: Callable[[], None] | None = None  # the worker's: a slot is free

    def end_being_written(self, writing: bool) -> None:
        self.ending = writing
        if writing and self.on_ending is not None:
            self.on_ending()

    def cancel_run(self) -> None:
        """Cancel the agent's run, once it has started."""
        if self.asyncio_task is not None:
            self.asyncio_task.cancel()


async def build_context(store: QueueStore, claim: Claim, cancelled: asyncio.Event, agent: Agent, lease: float = 30.0) -> RunContext:
    """What the agent is given; the context's earlier messages are read (through an outage of
    up to ``lease``) only for an agent that reads them."""
    task = claim.record.task
    history = task.get("history", [])
    user_messages = [m for m in history if m.get("role") == "ROLE_USER"]
    context_history: list[Json] = []
    if agent.reads_context_history:
        record = claim.record
        context_history = await through_outage(lambda _: store.context_history(record.context_id, exclude=record.id), lease, f"reading task {record.id}")
    return RunContext(
        task_id=claim.record.id,
        context_id=claim.record.context_id,
        message=user_messages[-1] if user_messages else {"parts": []},
        history=history,
        context_history=context_history,
        cancelled=cancelled,
        attempt=claim.record.attempts,
    )


async def execute(store: QueueStore, agent: Agent, running: RunningTask, timeout: float, hooks: list[EventHook], lease: float = 30.0) -> None:
    """Run the agent on a claimed task and record how it ended. Never raises."""
    record = running.claim.record
    attributes = {"a2a.task_id": record.id, "a2a.context_id": record.context_id, "a2a.attempt": record.attempts, "a2a.worker": running.claim.worker_id}
    # The task's trace, as the endpoint stored it, continues here; the span starts at the claim.
    with tracing.span("a2a.task", parent=record.trace, kind="consumer", attributes=attributes, start_ms=record.started_ms):
        await _execute(store, agent, running, timeout, hooks, lease)


async def _execute(store: QueueStore, agent: Agent, running: RunningTask, timeout: float, hooks: list[EventHook], lease: float) -> None:
    claim = running.claim
    task_id = claim.record.id
    updater = ClaimUpdater(store, claim, hooks, write_patience=lease, on_end_write=running.end_being_written)
    try:
        with tracing.span("a2a.claim", start_ms=claim.record.started_ms, attributes={"a2a.task.state": "TASK_STATE_WORKING"}):
            await updater.claimed()
        context = await build_context(store, claim, running.cancelled, agent, lease)
        with tracing.span("a2a.agent.run", attributes={"a2a.agent": agent.name}):
            async with asyncio.timeout(timeout):
                await agent.run(context, updater)
        if running.cancel_reason and not updater.ended:
            await updater.cancel(running.cancel_reason)
        elif not updater.ended:
            await updater.complete()
    except asyncio.CancelledError:
        # Cancelled by the worker: a cancel request, shutdown (returning) or a lost lease.
        if running.cancel_reason and not running.lost and not running.returning and not updater.ended:
            await _safely(updater.cancel(running.cancel_reason), task_id)
        if not running.returning:
            raise
    except (Conflict, TaskNotFound):
        log.warning("Task lost to another worker or removed, task_id=%s", task_id)
    except OutageTooLong as exc:
        # The queue's Redis stayed away (or full) for longer than the lease: the reaper will
        # hand the task to a worker that can write it. The agent did nothing wrong: no failure.
        # (An agent's own Redis errors are not this: they fail its task, as any error does.)
        log.warning("Task abandoned: Redis unavailable for longer than the lease, task_id=%s, error=%s", task_id, redis_error_text(exc))
    except Exception as exc:
        reason = _failure_reason(exc, timeout)
        log.warning("Task failed, task_id=%s, reason=%s", task_id, reason, exc_info=log.isEnabledFor(logging.DEBUG))
        await _safely(updater.fail(reason), task_id, updater)
    else:
        _log_outcome(task_id, updater)
    finally:
        running.done = True


def _failure_reason(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"Task exceeded the time limit of {timeout:g}s"
    if isinstance(exc, InvalidAgentResponse):
        return f"Invalid agent response: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _log_outcome(task_id: str, updater: ClaimUpdater) -> None:
    state = updater.final_state
    if state is TaskState.COMPLETED:
        log.info("Task completed successfully, task_id=%s", task_id)
    elif state is TaskState.FAILED:
        log.warning("Task failed, task_id=%s, reason=%s", task_id, model.message_text(updater.record.task["status"].get("message")))
    else:
        log.info("Task ended, task_id=%s, state=%s", task_id, state.value if state else "?")


async def _safely(coro: Coroutine[Any, Any, object], task_id: str, updater: ClaimUpdater | None = None) -> None:
    """Record a final state; if the agent had already ended the task, the agent's word stands."""
    if updater is not None and updater.ended:
        coro.close()
        return
    try:
        await coro
    except (Conflict, TaskNotFound):
        log.warning("Could not record the end of a task that was taken over, task_id=%s", task_id)
    except Exception:
        log.exception("Could not record the end of a task, task_id=%s", task_id)
