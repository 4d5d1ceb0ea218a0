from __future__ import annotations

import asyncio
import contextlib

from queueapp.agents.base import Agent, RunContext, TaskUpdater
from queueapp.agents.echo import echo_reply
from queueapp.model import Json, message_text


class DemoAgent(Agent):
    """A small command language, to make any kind of task on purpose.

    ``sleep N`` works N seconds with progress about once a second; ``fail REASON`` fails;
    ``ask QUESTION`` needs input, and the next message completes it; ``chunks N`` streams an
    artifact in N chunks; ``reject`` rejects; anything else is echoed.
    """

    name = "demo"
    reads_context_history = False
    description = "Demo commands: sleep N, fail REASON, ask QUESTION, chunks N, reject; anything else is echoed."

    def skills(self) -> list[Json]:
        commands = [
            ("sleep", "sleep N: work N seconds, reporting progress"),
            ("fail", "fail REASON: fail with that reason"),
            ("ask", "ask QUESTION: ask for input; the next message completes the task"),
            ("chunks", "chunks N: stream an artifact in N chunks"),
            ("reject", "reject: reject the task"),
        ]
        return [{"id": cid, "name": cid, "description": text, "tags": ["demo"], "examples": [text.split(":")[0]]} for cid, text in commands]

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        if _answers_question(context.history):
            await updater.complete(f"Thanks, got your answer: {context.text}")
            return
        command, _, argument = context.text.strip().partition(" ")
        command = command.lower()
        argument = argument.strip()
        if command == "sleep" and _number(argument) is not None:
            await _sleep(float(argument), context, updater)
        elif command == "fail":
            await updater.fail(argument or "failed on request")
        elif command == "ask":
            await updater.require_input(argument or "What should I do next?")
        elif command == "chunks" and argument.isdigit():
            await _chunks(int(argument), updater)
        elif command == "reject":
            await updater.reject(argument or "rejected on request")
        else:
            reply = echo_reply(context.text)
            await updater.artifact([{"text": reply}], name="response")
            await updater.complete(reply)


def _answers_question(history: list[Json]) -> bool:
    """True when the user's previous message in this task was an ``ask``."""
    earlier = [m for m in history[:-1] if m.get("role") == "ROLE_USER"]
    return bool(earlier) and message_text(earlier[-1]).strip().lower().startswith("ask")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


async def _sleep(seconds: float, context: RunContext, updater: TaskUpdater) -> None:
    await updater.working(f"Working for {seconds:g}s", progress=0.0)
    elapsed = 0.0
    while elapsed < seconds:
        step = min(1.0, seconds - elapsed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(context.cancelled.wait(), step)
        if context.cancelled.is_set():
            return
        elapsed += step
        if elapsed < seconds:
            await updater.working(f"Working: {elapsed:g}s of {seconds:g}s", progress=elapsed / seconds)
    await updater.complete(f"Slept {seconds:g}s")


async def _chunks(count: int, updater: TaskUpdater) -> None:
    await updater.working(f"Streaming {count} chunks")
    artifact_id = None
    for index in range(count):
        artifact_id = await updater.artifact(
            [{"text": f"chunk-{index + 1} "}], name="chunks", artifact_id=artifact_id, append=index > 0, last_chunk=index == count - 1
        )
    await updater.complete(f"Sent {count} chunks")
