"""Dashboard fixtures: the real ASGI app under uvicorn in this test's event loop, on a
free port, talking to the session's real Redis; users, logins and a channel layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvicorn
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.contrib.auth import get_user_model

from queueapp import config as config_module
from queueapp import services
from queueapp.store import QueueStore
from tests.dashboard.support import PASSWORD
from tests.support import free_port


@pytest.fixture
def channel_layer(settings, redis_url: str):
    """The Redis pub/sub channel layer on the test's own Redis, as production uses it."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [redis_url], "prefix": "a2a:channels"}}}
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture
def set_config(config):
    """Change dashboard settings for one test: ``set_config(dashboard_read_only=True)``."""

    def apply(**changes):
        config_module.set_current(config.replace(**changes))

    yield apply
    config_module.set_current(config)


@pytest.fixture
async def dash_services(store: QueueStore, config) -> AsyncIterator[services.Services]:
    """The services the app under test uses (installed for this test's event loop)."""
    shared = services.Services(config, store)
    services.install(shared)
    yield shared
    services.install(None)


@pytest.fixture
async def dash_store(dash_services: services.Services) -> QueueStore:
    """The store the app under test uses."""
    return dash_services.store


@pytest.fixture
async def server(dash_store: QueueStore, channel_layer, transactional_db) -> AsyncIterator[str]:
    """The project's ASGI application served by uvicorn on a free loopback port."""
    from a2a_site.asgi import application

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off", log_level="warning", ws="websockets-sansio"))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
def users(transactional_db) -> Callable[..., Awaitable[object]]:
    """Create a user with the test password: ``await users("name", staff=True)``."""

    @sync_to_async
    def make(name: str, staff: bool = False):
        return get_user_model().objects.create_user(name, f"{name}@example.com", PASSWORD, is_staff=staff)

    return make


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, shared by a browser test module."""
    from playwright.sync_api import sync_playwright

    from tests.dashboard.test_browser import CHROMIUM_ARGS, ensure_chromium

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()
