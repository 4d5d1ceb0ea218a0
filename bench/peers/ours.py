"""Our side: tasks through QueueStore.create_task, run by ``manage.py runworker --agent noop``."""

from __future__ import annotations

import asyncio
import compileall
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis

from bench.common import ROOT, base_env, child
from bench.peers import Side
from queueapp import model
from queueapp.store import Keys, QueueStore

KEYS = Keys("a2a")


def user_message(text: str = "ping") -> model.Json:
    return model.message("user", [model.text_part(text)])


async def enqueue_async(url: str, count: int) -> float:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    store = QueueStore(client, KEYS)
    try:
        await client.ping()
        started = time.perf_counter()
        for _ in range(count):
            await store.create_task(user_message())
        return time.perf_counter() - started
    finally:
        await client.aclose()


def precompile() -> None:
    """Our modules' bytecode written beforehand, as an installed package's is (pip compiles it).

    Otherwise a worker started with PYTHONDONTWRITEBYTECODE set (as the Docker image and many
    CI machines set it) compiles the project's modules afresh at every start, about 40 ms of a
    2-core machine's CPU, while the peers' modules come compiled from site-packages.
    """
    compileall.compile_dir(ROOT / "queueapp", quiet=1)


def worker_env(url: str, **extra: str) -> dict[str, str]:
    return base_env(url, tempfile.mkdtemp(prefix="a2a-bench-"), **extra)


class OurSide(Side):
    name = "ours"
    setup = "ours: `manage.py runworker --agent noop`, one asyncio process each, A2A_WORKER_CONCURRENCY agents at a time; a task whose end is being written gives its slot to the next claim (dramatiq's consumer thread, likewise, fetches the next messages while its worker threads run)"

    def enqueue(self, url: str, count: int) -> float:
        precompile()
        return asyncio.run(enqueue_async(url, count))

    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        env = worker_env(url, A2A_AGENT="noop", A2A_WORKER_CONCURRENCY=str(concurrency))
        return [child(["manage.py", "runworker"], env, log_dir / f"ours-{i}.log") for i in range(processes)]

    def done(self, client: redis.Redis) -> int:
        return int(client.hget(KEYS.counts, "total_completed") or 0)

    def claimed(self, client: redis.Redis) -> int | None:
        # A claim takes the id off the queue list, in the same script that marks it working.
        return int(client.get("bench:enqueued") or 0) - int(client.llen(KEYS.queue))
