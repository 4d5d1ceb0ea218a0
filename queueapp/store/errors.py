"""The queue service's errors: what a caller may catch, with a message it may show."""

from __future__ import annotations

from typing import Any


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
    default_message = "Redis could not confirm the write on enough replicas; retry with the same messageId and contextId"


def check(result: list[Any], task_id: str) -> None:
    """Raise what a script's {-1} (not found) or {-2} (guard failed) reply means."""
    code = int(result[0])
    if code == -1:
        raise TaskNotFound(f"task {task_id} not found")
    if code == -2:
        raise Conflict(f"task {task_id} changed while it was being updated")
    if code == -4:  # its data broke the script (a damaged hash); the other tasks of the call went through
        raise StoreError(f"task {task_id} could not be written: {result[1]}")
