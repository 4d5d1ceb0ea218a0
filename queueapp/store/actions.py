"""Actions shared by the endpoint, the dashboard and the commands: read, decide, write, retry on conflict."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from queueapp import model
from queueapp.model import Json, TaskRecord
from queueapp.states import TERMINAL, TaskState
from queueapp.store.errors import Conflict, InvalidTransition, TaskNotCancelable
from queueapp.store.transitions import Transitions

CONFLICT_RETRIES = 20


class Actions(Transitions):
    async def _modify(self, task_id: str, change: Callable[[TaskRecord], Awaitable[TaskRecord]]) -> TaskRecord:
        """Read, change and write back with the revision guard, retrying on conflicts."""
        for _ in range(CONFLICT_RETRIES):
            record = await self.require(task_id)
            try:
                return await change(record)
            except Conflict:
                continue
        raise Conflict(f"task {task_id} kept changing; try again")

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

        async def change(record: TaskRecord) -> TaskRecord:
            if not record.finished:
                raise InvalidTransition(f"task {task_id} is {record.state.value}; only finished tasks can be retried")
            record.task["status"] = model.status(TaskState.SUBMITTED, model.now_ms())
            await self.requeue_finished(record)
            return await self.require(task_id)

        return await self._modify(task_id, change)
