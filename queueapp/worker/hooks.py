"""The event hooks a worker runs after each recorded event (push notifications)."""

from __future__ import annotations

import asyncio
import logging

from queueapp.services import Services
from queueapp.worker.lifecycle import until_done_or
from queueapp.worker.updater import EventHook

log = logging.getLogger("queueapp.push")


def default_hooks(services: Services) -> list[EventHook]:
    """The process's push delivery (shared by the embedded workers of a ``serve``), if push is on."""
    if services.push is None:
        return []  # no config can exist, so skip the per-event lookup
    return [services.push]


async def close_hooks(services: Services, timeout: float, hurry: asyncio.Event | None = None) -> None:
    """At shutdown: give pending push notifications ``timeout`` seconds (none once ``hurry`` is set), then close."""
    delivery = services.push
    if delivery is None:
        return
    if hurry is None or not hurry.is_set():
        draining = asyncio.ensure_future(delivery.drain())
        await until_done_or([draining], hurry or asyncio.Event(), timeout)
        draining.cancel()
    if delivery.pending:
        log.warning("Shutdown left push notifications undelivered, pending=%s", delivery.pending)
    await delivery.aclose()
