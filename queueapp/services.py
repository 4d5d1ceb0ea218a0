"""What one process shares, built once: its configuration, store, notice subscription,
push delivery and authenticator (and the dashboard's bridge, on a web process).

``serve`` and ``runworker`` build a :class:`Services` at start-up and :func:`install` it;
views, consumers and the embedded workers then reach the same one through
:func:`get_services`. Where nothing was installed (tests, the ASGI app on its own), the first
call builds one from ``config.get()``.

Services belong to an event loop, because a Redis client's connections do: ``serve`` runs
its HTTP and gRPC servers, consumers and embedded workers on one loop, while the tests run
a loop per test. So one is kept per running loop.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import TYPE_CHECKING

from queueapp import config as config_module
from queueapp.config import Config
from queueapp.connection import connect
from queueapp.events import NotifyListener
from queueapp.push import PushDelivery
from queueapp.store import QueueStore

if TYPE_CHECKING:
    from dashboard.live import Bridge
    from queueapp.auth import Authenticator


class Services:
    def __init__(self, config: Config, store: QueueStore):
        self.config = config
        self.store = store
        # One delivery (one HTTP client, one bound on pending events), shared by the
        # embedded workers of a ``serve``; None when push notifications are off.
        self.push = PushDelivery.from_config(store, config) if config.capabilities_push_notifications else None
        # The dashboard's batched fan-out of the notices, set up by dashboard.live.ensure_bridge.
        self.bridge: Bridge | None = None
        self._notices = NotifyListener(store)

    @functools.cached_property
    def authenticator(self) -> Authenticator:
        """Who a request's credential names; built once, so an OpenID Connect issuer's keys
        stay cached between requests."""
        from queueapp.auth import Authenticator  # with httpx and jwt, which a worker never needs

        return Authenticator.from_config(self.config)

    def notices(self) -> NotifyListener:
        """The process's one subscription to the notify channel, started on first use."""
        self._notices.start()
        return self._notices

    async def close(self) -> None:
        """Stop the bridge and the subscription, then close the store's client.

        The subscription stops first: one whose client was closed under it reconnects, and
        on a Sentinel pool that reconnect can swallow the task's cancellation, so the
        process would never exit.
        """
        if self.bridge is not None:
            await self.bridge.stop()
        await self._notices.stop()
        await self.store.close()


_installed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Services] = weakref.WeakKeyDictionary()
_building: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def install(services: Services | None) -> None:
    """Make ``services`` the running loop's (None forgets them): serve, runworker, tests."""
    loop = asyncio.get_running_loop()
    if services is None:
        _installed.pop(loop, None)
    else:
        _installed[loop] = services


async def get_services() -> Services:
    """The running loop's services: the installed ones, else built (and connected) on first use."""
    loop = asyncio.get_running_loop()
    services = _installed.get(loop)
    if services is not None:
        return services
    async with _building.setdefault(loop, asyncio.Lock()):
        if loop not in _installed:
            cfg = config_module.get()
            client = await connect(cfg, check_policy=False)
            _installed[loop] = Services(cfg, QueueStore.from_config(client, cfg))
    return _installed[loop]


async def get_store() -> QueueStore:
    """The running loop's store (see :func:`get_services`)."""
    return (await get_services()).store
