"""Agents that misbehave on purpose, loaded by tests with ``A2A_AGENT=tests.agents.<Name>``."""

from __future__ import annotations

import asyncio

import redis

from queueapp.agents.base import Agent, RunContext, TaskUpdater
from queueapp.services import get_store

RUNS_KEY_SUFFIX = "test:runs"


def runs_key(prefix: str = "a2a") -> str:
    """Hash task id -> how many times an agent started on it (written by :class:`CountingAgent`)."""
    return f"{prefix}:{RUNS_KEY_SUFFIX}"


class RaisingAgent(Agent):
    """Raises in the middle of its work."""

    name = "raising"

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        await updater.working("about to break")
        raise RuntimeError(f"agent exploded on {context.text!r}")


class OwnRedisDownAgent(Agent):
    """Its own Redis (a cache, say) is down: redis-py's error, not the queue's."""

    name = "own-redis-down"

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        raise redis.ConnectionError("Error 111 connecting to the agent's cache. Connection refused.")


class HangingAgent(Agent):
    """Never returns and ignores cancellation requests: only the time limit stops it."""

    name = "hanging"

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        await asyncio.Event().wait()


class InvalidEventAgent(Agent):
    """Reports an artifact whose part is not a valid A2A part."""

    name = "invalid-event"

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        await updater.artifact([{"bogus": 1}], name="broken")


class CountingAgent(Agent):
    """Counts each run of each task in Redis, sleeps for the number in the text, then completes.

    The count is what tells a test whether a task was processed more than once.
    """

    name = "counting"

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        store = await get_store()
        await store.redis.hincrby(runs_key(store.keys.prefix), context.task_id, 1)
        try:
            seconds = float(context.text.strip() or 0)
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            await asyncio.sleep(seconds)
        await updater.complete(f"counted {context.task_id}")


class FaultyAgent(Agent):
    """Misbehaves as the text says: ``raise``, ``hang`` or ``invalid``; anything else completes."""

    name = "faulty"

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        behaviour = {"raise": RaisingAgent, "hang": HangingAgent, "invalid": InvalidEventAgent}.get(context.text.strip())
        if behaviour is None:
            await updater.complete("fine")
            return
        await behaviour(self.config).run(context, updater)
