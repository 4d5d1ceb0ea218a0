"""The one enum of task states; every other spelling maps to and from it."""

from __future__ import annotations

import re
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
        return _V1[self]  # every status a worker records spells its state so

    @property
    def tone(self) -> str:
        """The dashboard's colour class for it (``tone-*`` in dashboard.css); never the only signal."""
        return _TONES.get(self, "plain")

    @property
    def label(self) -> str:
        """How the dashboard shows it."""
        return self.value.replace("-", " ")

    @classmethod
    def parse(cls, text: str) -> TaskState:
        """Accept the 0.3 spelling, the 1.0 spelling, or the enum name."""
        stored = _BY_VALUE.get(text)  # every task read parses one or two of these
        if stored is not None:
            return stored
        cleaned = text.strip()
        if cleaned.upper().startswith("TASK_STATE_"):
            cleaned = cleaned[len("TASK_STATE_") :]
            if cleaned.upper() == "UNSPECIFIED":
                return cls.UNKNOWN
        cleaned = cleaned.lower().replace("_", "-")
        if cleaned == "cancelled":
            cleaned = "canceled"
        return cls(cleaned)


_V1 = {state: "TASK_STATE_" + ("UNSPECIFIED" if state is TaskState.UNKNOWN else state.name) for state in TaskState}

# The spellings a task read meets: the stored value, and the 1.0 spelling of a task's status.
_BY_VALUE = {**{state.value: state for state in TaskState}, **{state.v1: state for state in TaskState}}

# The finished states in one fixed order: each has its own history index (keys.py), per-minute
# counter (store.stats), retention limit and metric, and the Lua scripts get the same list.
FINISHED = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED)
TERMINAL = frozenset(FINISHED)
INTERRUPTED = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})
# Finishing an agent run ends in one of these; anything else is an invalid agent response.
AGENT_FINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.REJECTED, TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})

_TONES = {
    TaskState.COMPLETED: "ok",
    TaskState.FAILED: "bad",
    TaskState.REJECTED: "bad",
    TaskState.CANCELED: "muted",
    TaskState.WORKING: "info",
    TaskState.INPUT_REQUIRED: "warn",
    TaskState.AUTH_REQUIRED: "warn",
}


def lua_constants(source: str) -> str:
    """The states a script's ``source`` names, as Lua locals put in front of it (scripts.py).

    ``STATE.SUBMITTED`` is ``'submitted'``, ``STATE_V1.WORKING`` is ``'TASK_STATE_WORKING'`` and so on; ``FINISHED`` lists the finished states in
    the order of :data:`FINISHED`, so a script that takes one key per finished state loops over
    ``#FINISHED`` keys instead of a count written by hand.

    Only the names the script uses are defined: Redis runs these lines on every call, and a
    table of every state costs more than many a script's own work. A name that is not a state
    fails here, when the script's text is assembled (``tests/test_scripts.py`` assembles every
    one), rather than as a nil in Redis.
    """
    code = re.sub(r"--[^\n]*", "", source)  # a state named in a comment is not used
    lines = ["-- Generated from queueapp/states.py."]
    for table, spelling in (("STATE", "value"), ("STATE_V1", "v1")):
        used = sorted(set(re.findall(rf"\b{table}\.(\w+)", code)))
        unknown = [name for name in used if name not in TaskState.__members__]
        if unknown:
            raise ValueError(f"{table}.{unknown[0]} is not a task state")
        if used:
            entries = ", ".join(f"{name} = '{getattr(TaskState[name], spelling)}'" for name in used)
            lines.append(f"local {table} = {{{entries}}}")
    if re.search(r"\bFINISHED\b", code):
        lines.append("local FINISHED = {" + ", ".join(f"'{state.value}'" for state in FINISHED) + "}")
    return "\n".join(lines) + "\n"
