"""The event hooks a worker runs after each recorded event (push notifications)."""

from __future__ import annotations

from typing import Any

from queueapp.store import QueueStore
from queueapp.worker.updater import EventHook


def default_hooks(store: QueueStore, config: Any) -> list[EventHook]:
    return []
