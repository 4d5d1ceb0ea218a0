"""The conformance agent: in-band signals for the A2A conformance kit (TCK).

The ``messageId`` prefix of the user message says what to do. Prefixes are matched in
the order of :data:`BEHAVIOURS`, so a longer prefix must come before a shorter one that
it starts with (``tck-artifact-file-url`` before ``tck-artifact-file``). Anything else
completes with "Hello from TCK".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from queueapp.agents.base import Agent, RunContext, TaskUpdater
from queueapp.config import Config

HELLO = "Hello from TCK"
GENERATED_TEXT = "Generated text content"
FILE_CONTENT = "Generated file content"
FILE_URL = "https://example.com/output.txt"

Behaviour = Callable[["ConformanceAgent", RunContext, TaskUpdater], Awaitable[None]]


def file_part() -> dict[str, Any]:
    return {"raw": base64.b64encode(FILE_CONTENT.encode()).decode(), "filename": "output.txt", "mediaType": "text/plain"}


async def _complete(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.complete(HELLO)


async def _artifact_text(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.artifact([{"text": GENERATED_TEXT}], name="text")
    await updater.complete()


async def _artifact_file(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.artifact([file_part()], name="output.txt")
    await updater.complete()


async def _artifact_file_url(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.artifact([{"url": FILE_URL, "filename": "output.txt", "mediaType": "text/plain"}], name="output.txt")
    await updater.complete()


async def _artifact_data(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.artifact([{"data": {"key": "value", "count": 42}, "mediaType": "application/json"}], name="data")
    await updater.complete()


async def _message_response(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.reply("Direct message response")


async def _input_required(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    # Every message with this prefix asks for more, follow-ups included: the kit adds history
    # with them and ends the task with a tck-complete-task message (CORE-HIST-005/006).
    await updater.require_input("Please provide more input")


async def _reject(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.reject("rejected")


async def _stream_text(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.working("Streaming")
    await updater.artifact([{"text": GENERATED_TEXT}], name="text")
    await updater.complete()


async def _stream_complete(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.complete()


async def _stream_file(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.working("Streaming a file")
    await updater.artifact([file_part()], name="output.txt")
    await updater.complete()


async def _stream_chunked(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.working("Streaming chunks")
    artifact_id = await updater.artifact([{"text": "chunk-1 "}], name="chunked", last_chunk=False)
    await updater.artifact([{"text": "chunk-2"}], name="chunked", artifact_id=artifact_id, append=True, last_chunk=True)
    await updater.complete()


async def _resubscribe(agent: ConformanceAgent, context: RunContext, updater: TaskUpdater) -> None:
    await updater.working("Working; resubscribe now")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(context.cancelled.wait(), agent.resubscribe_delay)
    if not context.cancelled.is_set():
        await updater.complete()


BEHAVIOURS: list[tuple[str, Behaviour]] = [
    ("tck-complete-task", _complete),
    ("tck-artifact-text", _artifact_text),
    ("tck-artifact-file-url", _artifact_file_url),
    ("tck-artifact-file", _artifact_file),
    ("tck-artifact-data", _artifact_data),
    ("tck-message-response", _message_response),
    ("tck-input-required", _input_required),
    ("tck-reject-task", _reject),
    ("tck-stream-001", _stream_text),
    ("tck-stream-003", _stream_text),
    ("tck-stream-ordering-001", _stream_text),
    ("tck-stream-artifact-text", _stream_text),
    ("tck-stream-002", _stream_complete),
    ("tck-stream-artifact-file", _stream_file),
    ("tck-stream-artifact-chunked", _stream_chunked),
    ("test-resubscribe-message-id", _resubscribe),
]


def behaviour_for(message_id: str) -> Behaviour:
    """The behaviour the first matching prefix names; unknown prefixes complete with a greeting."""
    for prefix, behaviour in BEHAVIOURS:
        if message_id.startswith(prefix):
            return behaviour
    return _complete


class ConformanceAgent(Agent):
    """Acts on the user message's ``messageId`` prefix, as the A2A conformance kit expects."""

    name = "conformance"
    reads_context_history = False
    description = "Answers the A2A conformance kit's in-band signals (the messageId prefix picks the behaviour)."
    output_modes = ("text/plain", "application/json")

    def __init__(self, config: Config | None = None):
        super().__init__(config)
        self.resubscribe_delay: float = getattr(config, "conformance_resubscribe_delay", 3.0)

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        await behaviour_for(context.message_id)(self, context, updater)
