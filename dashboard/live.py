"""Live updates: the process's notify listener, fanned out to its dashboard consumers.

Every server process holds one subscription to ``a2a:queue:notify`` (queueapp.events).
:class:`Bridge` adds one callback to it and hands the changes, in small batches, straight
to the consumers of this process that subscribed to it: a burst of a thousand changes
becomes a few batches, and a notice heard from Redis goes back through Redis no more
(every process hears every change through its own subscription, so the Channels layer
would only echo them). Each browser's :class:`consumers.DashboardConsumer` then renders
at most A2A_DASHBOARD_MAX_FPS times per second. The Channels layer stays for messages
that must cross processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from queueapp.events import NotifyListener
from queueapp.model import Json
from queueapp.services import Services

log = logging.getLogger("dashboard.live")

BATCH_INTERVAL_S = 0.05  # at most 20 batches per second to the consumers
MAX_IDS = 200  # a larger batch just says "everything changed"

Subscriber = Callable[[Json], None]


class Bridge:
    def __init__(self, listener: NotifyListener):
        self.listener = listener
        self.tasks: set[str] = set()
        self.contexts: set[str] = set()
        self.everything = False
        self.generation = 0  # counts notices: a frame rendered after reading it shows them all
        self.wake = asyncio.Event()
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(batch)`` with every batch of changes, on this loop, until unsubscribed."""
        self.subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self.listener.add(self.on_notice)
            self._task = asyncio.create_task(self._run(), name="dashboard-bridge")

    async def stop(self) -> None:
        self.listener.remove(self.on_notice)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def on_notice(self, notice: Json) -> None:
        self.generation += 1
        task_id, context_id = notice.get("task_id"), notice.get("context_id")
        if not task_id:  # pause/resume and other queue-wide notices
            self.everything = True
        if not self.everything:
            self.tasks.add(str(task_id))
            if context_id:
                self.contexts.add(str(context_id))
            if len(self.tasks) > MAX_IDS or len(self.contexts) > MAX_IDS:
                self.everything = True
        if self.everything:
            self.tasks.clear()
            self.contexts.clear()
        self.wake.set()

    def take(self) -> Json:
        batch = {"type": "queue.changed", "tasks": sorted(self.tasks), "contexts": sorted(self.contexts), "everything": self.everything}
        self.tasks, self.contexts, self.everything = set(), set(), False
        self.wake.clear()
        return batch

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            batch = self.take()
            for subscriber in list(self.subscribers):
                try:
                    subscriber(batch)
                except Exception:
                    log.exception("Dashboard subscriber failed")
            await asyncio.sleep(BATCH_INTERVAL_S)


def ensure_bridge(services: Services) -> Bridge:
    """The process's bridge (one per :class:`Services`), started on first use."""
    if services.bridge is None:
        services.bridge = Bridge(services.notices())
    services.bridge.start()
    return services.bridge
