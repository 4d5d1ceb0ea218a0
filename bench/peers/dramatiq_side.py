"""dramatiq with its Redis broker: ``dramatiq --processes P --threads C``; a message leaves its hash when acked."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis

from bench.common import child
from bench.peers import Side

URL_VARIABLE = "BENCH_REDIS_URL"
MESSAGES = "dramatiq:default.msgs"


def _actor():
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    dramatiq.set_broker(RedisBroker(url=os.environ.get(URL_VARIABLE, "redis://127.0.0.1:6379/0")))

    @dramatiq.actor(queue_name="default", max_retries=0)
    def noop() -> None:
        return None

    return noop


class DramatiqSide(Side):
    name = "dramatiq"
    setup = "dramatiq: Redis broker, `--processes P --threads C`, default middleware"

    def enqueue(self, url: str, count: int) -> float:
        os.environ[URL_VARIABLE] = url
        noop = _actor()
        started = time.perf_counter()
        for _ in range(count):
            noop.send()
        return time.perf_counter() - started

    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        env = {**os.environ, URL_VARIABLE: url}
        args = ["-m", "dramatiq", "bench.peers.dramatiq_side", "--processes", str(processes), "--threads", str(concurrency)]
        return [child(args, env, log_dir / "dramatiq.log")]

    def done(self, client: redis.Redis) -> int:
        total = int(client.get("bench:enqueued") or 0)
        return total - int(client.hlen(MESSAGES))


if os.environ.get(URL_VARIABLE) and __name__ != "__main__":
    noop = _actor()  # the worker imports this module to find the actor
