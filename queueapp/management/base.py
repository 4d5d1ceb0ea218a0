"""What the management commands share: configuration, logging, tracing and the Redis connection.

The work is done in :mod:`queueapp.startup`, which knows nothing of Django; here its
StartError becomes Django's CommandError, which prints as one line and exits 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandError

from queueapp import config as config_module
from queueapp import startup
from queueapp.store import QueueStore


def load_config(**overrides: Any) -> config_module.Config:
    """The validated configuration, or a one-line CommandError naming the bad variable."""
    try:
        return startup.load_config(**overrides)
    except startup.StartError as exc:
        raise CommandError(str(exc)) from None


async def open_store(cfg: config_module.Config, *, check_policy: bool = True) -> QueueStore:
    try:
        return await startup.open_store(cfg, check_policy=check_policy)
    except startup.StartError as exc:
        raise CommandError(str(exc)) from None


@contextlib.contextmanager
def tracing_on() -> Iterator[None]:
    """:func:`queueapp.startup.tracing_on`, a bad OTEL_* value a CommandError."""
    try:
        with startup.tracing_on():
            yield
    except startup.StartError as exc:
        raise CommandError(str(exc)) from None


STORAGE_NAMES = {"redis": "Redis storage", "embedded": "embedded Redis storage", "memory": "in-memory storage (nothing persists)"}
