"""What the management commands share: configuration, logging and the Redis connection."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import CommandError

from queueapp import config as config_module
from queueapp.connection import RedisUnavailable, connect
from queueapp.store import QueueStore


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
