"""What the management commands share: configuration, logging and the Redis connection."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from django.core.management.base import CommandError

from queueapp import config as config_module
from queueapp import tracing
from queueapp.connection import RedisUnavailable, connect
from queueapp.store import QueueStore


@contextlib.contextmanager
def tracing_on():
    """Tracing as OTEL_* configures it, for the command's life; a bad OTEL_* value is one line.

    OTEL_* lines of ``.env`` count too (the environment wins), as the A2A_* ones do: the SDK
    and its exporter read only the process environment, so they are copied there.
    """
    for name, value in config_module.load_env_file().items():
        if name.startswith("OTEL_"):
            os.environ.setdefault(name, value)
    try:
        tracing.setup()
    except tracing.TracingConfigError as exc:
        raise CommandError(str(exc)) from None
    try:
        yield
    finally:
        tracing.shutdown()  # exports the spans still pending


def load_config(**overrides: Any) -> config_module.Config:
    """The validated configuration, or a one-line CommandError naming the bad variable."""
    try:
        config_module.set_current(None)
        cfg = config_module.get()
    except config_module.ConfigError as exc:
        raise CommandError(str(exc)) from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        cfg = cfg.replace(**changes)
        config_module.set_current(cfg)
    logging.getLogger("queueapp").setLevel(logging.DEBUG if cfg.debug else logging.INFO)
    return cfg


async def open_store(cfg: config_module.Config, *, check_policy: bool = True) -> QueueStore:
    try:
        client = await connect(cfg, check_policy=check_policy)
    except RedisUnavailable as exc:
        raise CommandError(str(exc)) from None
    return QueueStore.from_config(client, cfg)


STORAGE_NAMES = {"redis": "Redis storage", "embedded": "embedded Redis storage", "memory": "in-memory storage (nothing persists)"}
