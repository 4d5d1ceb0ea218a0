"""The one enum of task states; every other spelling maps to and from it."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    AUTH_REQUIRED = "auth-required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_interrupted(self) -> bool:
        return self in INTERRUPTED

    @property
    def v1(self) -> str:
        """The A2A 1.0 spelling, such as ``TASK_STATE_INPUT_REQUIRED``."""
        return "TASK_STATE_" + ("UNSPECIFIED" if self is TaskState.UNKNOWN else self.name)

    @property
    def label(self) -> str:
        """How the dashboard shows it."""
        return self.value.replace("-", " ")

    @classmethod
    def parse(cls, text: str) -> TaskState:
        """Accept the 0.3 spelling, the 1.0 spelling, or the enum name."""
        cleaned = text.strip()
        if cleaned.upper().startswith("TASK_STATE_"):
            cleaned = cleaned[len("TASK_STATE_") :]
            if cleaned.upper() == "UNSPECIFIED":
                return cls.UNKNOWN
        cleaned = cleaned.lower().replace("_", "-")
        if cleaned == "cancelled":
            cleaned = "canceled"
        return cls(cleaned)


TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED})
INTERRUPTED = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})
# Finishing an agent run ends in one of these; anything else is an invalid agent response.
AGENT_FINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.REJECTED, TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})
