"""Shared fixtures.

Integration tests get a redis-server of this test session's own (never someone's data),
flushed before each test. Unit tests use fakeredis through ``fake_store``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis.asyncio as aioredis

from queueapp import config as config_module
from queueapp.store import QueueStore
from queueapp.store.keys import Keys
from queueapp.store.pipelining import install_fast_packer
from tests.support import ManagedProcess, RedisServer, ServeProcess, base_env

# The tests' own stores pack commands as serve's and runworker's do (queueapp.startup.open_store).
install_fast_packer()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def make_config(tmp_path: Path):
    """Build a Config from A2A_* values (and nothing from the real environment)."""

    def make(**values: str) -> config_module.Config:
        env = {"A2A_DATA_DIR": str(tmp_path / "data"), **values}
        return config_module.load(env)

    return make


@pytest.fixture
def config(make_config, redis_url: str) -> config_module.Config:
    cfg = make_config(A2A_QUEUE_URL=redis_url, A2A_WORKER_LEASE="3s", A2A_WORKER_HEARTBEAT_INTERVAL="200ms", A2A_WORKER_SHUTDOWN_GRACE="2s")
    config_module.set_current(cfg)
    yield cfg
    config_module.set_current(None)


@pytest.fixture
async def store(config) -> QueueStore:
    """A QueueStore on the session's real Redis, emptied first."""
    client = aioredis.Redis.from_url(config.queue_url, decode_responses=True)
    yield QueueStore.from_config(client, config)
    await client.aclose()


@pytest.fixture
async def fake_store() -> QueueStore:
    """A QueueStore on fakeredis, for fast unit tests."""
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield QueueStore(client, Keys("a2a"))
    await client.aclose()


@pytest.fixture
def processes(tmp_path: Path):
    """Start ``serve`` and ``runworker`` child processes; all are stopped after the test."""
    started: list[ManagedProcess] = []

    class Factory:
        data_dir = str(tmp_path / "data")

        def env(self, redis_url: str | None, **extra: str) -> dict[str, str]:
            return base_env(redis_url, self.data_dir, **extra)

        def serve(self, redis_url: str | None, *, wait: bool = True, extra_args: list[str] | None = None, **extra: str) -> ServeProcess:
            proc = ServeProcess(self.env(redis_url, **extra), tmp_path / f"serve-{len(started)}.log", extra_args=extra_args)
            started.append(proc)
            return proc.start(wait=wait)

        def worker(self, redis_url: str | None, *args: str, **extra: str) -> ManagedProcess:
            proc = ManagedProcess(["runworker", *args], self.env(redis_url, **extra), tmp_path / f"worker-{len(started)}.log")
            started.append(proc)
            return proc.start()

        def command(self, redis_url: str | None, *args: str, **extra: str) -> ManagedProcess:
            proc = ManagedProcess(list(args), self.env(redis_url, **extra), tmp_path / f"cmd-{len(started)}.log")
            started.append(proc)
            return proc.start()

    yield Factory()
    for proc in reversed(started):
        proc.stop(timeout=15)


@pytest.fixture(params=["redis", "fakeredis"])
def any_store(request) -> QueueStore:
    return request.getfixturevalue("store" if request.param == "redis" else "fake_store")
