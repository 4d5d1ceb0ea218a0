from __future__ import annotations

from queueapp.agents.base import Agent, RunContext, TaskUpdater

REPLY_PREFIX = (
    "Task processed successfully using Redis queue storage. Benefits: persistent storage, "
    "horizontal scaling, and reliable processing. Original input: "
)


def echo_reply(text: str) -> str:
    return REPLY_PREFIX + text


class EchoAgent(Agent):
    """Completes every task with the echo reply, as a message and as a text artifact."""

    name = "echo"
    description = "Replies with the input it was given, to show the queue at work."
    reads_context_history = False

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        reply = echo_reply(context.text)
        await updater.artifact([{"text": reply}], name="response")
        await updater.complete(reply)


class NoopAgent(Agent):
    """Completes at once with no output: for benchmarks and queue tests."""

    name = "noop"
    description = "Completes every task at once."
    reads_context_history = False

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        await updater.complete()
