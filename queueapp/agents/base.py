"""The agent contract.

An agent is asynchronous. For each task the worker calls :meth:`Agent.run` once with a
:class:`RunContext` (the user's message, the task's and the context's history, and a
cancellation event) and a :class:`TaskUpdater` through which the agent reports.

Contract:
- ``run`` may report any number of status updates and artifacts (whole or in chunks).
- It ends the task by calling exactly one of ``complete``, ``fail``, ``reject``,
  ``require_input`` or ``reply``; returning without doing so completes the task.
- It must return promptly once ``context.cancelled`` is set; the worker then records
  the task as canceled. Each task runs in its own asyncio task, so an agent must not
  block the event loop (use ``asyncio.to_thread`` for blocking work).
- An exception fails the task with its text; exceeding A2A_TASK_TIMEOUT fails it too.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from queueapp import model
from queueapp.config import Config
from queueapp.model import Json


@dataclass
class RunContext:
    task_id: str
    context_id: str
    message: Json
    """The user message that this run answers (1.0 JSON)."""
    history: list[Json]
    """The task's messages so far, oldest first, ending with ``message``."""
    context_history: list[Json]
    """Messages of the context's earlier tasks, oldest first (empty for an agent whose
    ``reads_context_history`` is False)."""
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    attempt: int = 1

    @property
    def text(self) -> str:
        return model.message_text(self.message)

    @property
    def message_id(self) -> str:
        return str(self.message.get("messageId", ""))


class TaskUpdater(Protocol):
    """What an agent can report. Every call is recorded in Redis before it returns."""

    async def working(self, text: str | None = None, *, progress: float | None = None) -> None: ...

    async def artifact(self, parts: list[Json], *, name: str | None = None, artifact_id: str | None = None, append: bool = False, last_chunk: bool = True) -> str: ...

    async def complete(self, text: str | None = None) -> None: ...

    async def fail(self, reason: str) -> None: ...

    async def reject(self, reason: str) -> None: ...

    async def require_input(self, question: str) -> None: ...

    async def reply(self, text: str) -> None:
        """Answer with a direct Message instead of task output."""


class Agent(abc.ABC):
    """Subclass this and point A2A_AGENT at ``package.module.ClassName``."""

    name = "agent"
    description = "An agent."
    input_modes: tuple[str, ...] = ("text/plain",)
    output_modes: tuple[str, ...] = ("text/plain",)
    reads_context_history = True
    """False spares the worker a Redis read per task for an agent that never looks at
    ``RunContext.context_history``."""

    def __init__(self, config: Config | None = None):
        self.config = config

    def skills(self) -> list[Json]:
        """The skills shown on the agent card (1.0 AgentSkill JSON)."""
        return [{"id": self.name, "name": self.name, "description": self.description, "tags": [self.name]}]

    @abc.abstractmethod
    async def run(self, context: RunContext, updater: TaskUpdater) -> None: ...
