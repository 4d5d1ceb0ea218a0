"""Following tasks: one pub/sub listener per process, and tasks' events read through it.

Every change publishes a notice on ``a2a:queue:notify``. A process holds a single
subscription (:class:`NotifyListener`) and fans notices out to local callbacks: the
dashboard bridge, and the waiters of :func:`follow_task`. Pub/sub is only a hint; the
truth is each task's list of events, which :func:`follow_task` reads after the last event
id it saw. So nothing is lost between subscribing and the first event, every
follower of a task sees the same events in the same order, and a waiting request holds
no Redis connection of its own: a thousand waiters share the one subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable

from queueapp import model
from queueapp.connection import redis_error_text
from queueapp.model import Json
from queueapp.states import INTERRUPTED, TERMINAL
from queueapp.store import QueueStore

log = logging.getLogger("queueapp.events")

Callback = Callable[[Json], None]
POLL_FALLBACK_S = 1.0  # re-read a task's events this often even without a notice (pub/sub may drop one)


class NotifyListener:
    """The process's single subscription to the notify channel (one per :class:`queueapp.services.Services`)."""

    def __init__(self, store: QueueStore):
        self.store = store
        self.callbacks: set[Callback] = set()
        self.task_waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="notify-listener")

    async def stop(self) -> None:
        """Stop listening; do it before closing the store's client (see ``Services.close``)."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def add(self, callback: Callback) -> None:
        self.callbacks.add(callback)
        self.start()

    def remove(self, callback: Callback) -> None:
        self.callbacks.discard(callback)

    def _dispatch(self, notice: Json) -> None:
        task_id = notice.get("task_id")
        if task_id:
            for waiter in self.task_waiters.get(task_id, ()):
                waiter.set()
        for callback in list(self.callbacks):
            try:
                callback(notice)
            except Exception:
                log.exception("Notify callback failed")

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            pubsub = None
            try:
                pubsub = await self.store.subscribe_notices()
                self.connected.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    try:
                        notices = model.loads(message["data"])
                    except ValueError:
                        continue
                    # A claim or a finish of many tasks publishes their notices as one array.
                    for notice in notices if isinstance(notices, list) else [notices]:
                        if isinstance(notice, dict):
                            self._dispatch(notice)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("Notify subscription lost, reconnecting in %.1fs, error=%s", backoff, redis_error_text(exc))
                # Wake every waiter so that it re-reads its task's events instead of waiting blind.
                for waiters in self.task_waiters.values():
                    for waiter in waiters:
                        waiter.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()


async def follow_task(listener: NotifyListener, task_id: str, after: str = "0-0", *, poll_interval: float = POLL_FALLBACK_S) -> AsyncGenerator[tuple[str, Json], None]:
    """Yield ``(event id, event)`` for a task's events after ``after``, forever, in order.

    ``listener`` is the process's subscription (``Services.notices()``), whose store the
    events are read from. The caller stops iterating (or closes the generator) when it has
    what it needs; nothing keeps running after that.
    """
    store = listener.store
    wake = asyncio.Event()
    listener.task_waiters[task_id].add(wake)
    try:
        while True:
            wake.clear()
            events = await store.read_events(task_id, after)
            for entry_id, event in events:
                after = entry_id
                yield entry_id, event
            if events:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_interval)
    finally:
        waiters = listener.task_waiters.get(task_id)
        if waiters is not None:
            waiters.discard(wake)
            if not waiters:
                listener.task_waiters.pop(task_id, None)


def event_state(event: Json) -> str | None:
    """The 1.0 state an event carries, if any (``TASK_STATE_*``)."""
    if "statusUpdate" in event:
        return str(event["statusUpdate"]["status"]["state"])
    if "task" in event:
        return str(event["task"]["status"]["state"])
    return None


def ends_stream(event: Json) -> bool:
    """A stream closes after a terminal or interrupted state, or a direct message."""
    if "message" in event:
        return True
    state = event_state(event)
    return state is not None and state in _CLOSING_STATES


def ends_subscription(event: Json) -> bool:
    """A subscription stays open through interrupted states and closes after a terminal one."""
    if "message" in event:
        return True
    state = event_state(event)
    return state is not None and state in _TERMINAL_STATES


_CLOSING_STATES = {state.v1 for state in TERMINAL | INTERRUPTED}
_TERMINAL_STATES = {state.v1 for state in TERMINAL}
