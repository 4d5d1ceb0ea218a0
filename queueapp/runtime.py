"""The per-process services: one Redis client and one QueueStore per event loop.

Views, consumers and the embedded workers of one ``serve`` process share them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from queueapp import config as config_module
from queueapp.connection import connect
from queueapp.store import QueueStore

_stores: dict[int, QueueStore] = {}
_locks: dict[int, asyncio.Lock] = {}


async def get_store() -> QueueStore:
    """The QueueStore of the running event loop, connecting on first use."""
    loop_id = id(asyncio.get_running_loop())
    store = _stores.get(loop_id)
    if store is not None:
        return store
    lock = _locks.setdefault(loop_id, asyncio.Lock())
    async with lock:
        if loop_id not in _stores:
            cfg = config_module.get()
            client = await connect(cfg, check_policy=False)
            _stores[loop_id] = QueueStore.from_config(client, cfg)
    return _stores[loop_id]


def set_store(store: QueueStore | None, loop: Any = None) -> None:
    """Install a store for the running loop (commands that connected already; tests)."""
    loop_id = id(loop or asyncio.get_running_loop())
    if store is None:
        _stores.pop(loop_id, None)
    else:
        _stores[loop_id] = store


async def close_all() -> None:
    from queueapp.events import stop_listener

    await stop_listener()
    for store in list(_stores.values()):
        await store.close()
    _stores.clear()
