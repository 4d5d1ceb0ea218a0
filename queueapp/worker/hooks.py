"""The event hooks a worker runs after each recorded event (push notifications)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from queueapp.push import PushDelivery
from queueapp.store import QueueStore
from queueapp.worker.lifecycle import until_done_or
from queueapp.worker.updater import EventHook

log = logging.getLogger("queueapp.push")

# One delivery (one HTTP client, one bound on pending events) per store, so the embedded
# workers of a ``serve`` process share it.
_deliveries: weakref.WeakKeyDictionary[QueueStore, PushDelivery] = weakref.WeakKeyDictionary()


def push_delivery(store: QueueStore, config: Any) -> PushDelivery:
    """The process's push delivery for ``store``, created on first use."""
    delivery = _deliveries.get(store)
    if delivery is None:
        delivery = _deliveries[store] = PushDelivery.from_config(store, config)
    return delivery


def default_hooks(store: QueueStore, config: Any) -> list[EventHook]:
    if not getattr(config, "capabilities_push_notifications", True):
        return []  # no config can exist, so skip the per-event lookup
    return [push_delivery(store, config)]


async def close_hooks(store: QueueStore, timeout: float, hurry: asyncio.Event | None = None) -> None:
    """At shutdown: give pending push notifications ``timeout`` seconds (none once ``hurry`` is set), then close."""
    delivery = _deliveries.pop(store, None)
    if delivery is None:
        return
    if hurry is None or not hurry.is_set():
        draining = asyncio.ensure_future(delivery.drain())
        await until_done_or([draining], hurry or asyncio.Event(), timeout)
        draining.cancel()
    if delivery.pending:
        log.warning("Shutdown left push notifications undelivered, pending=%s", delivery.pending)
    await delivery.aclose()
