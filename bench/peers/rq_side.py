"""RQ: ``SimpleWorker`` processes (no fork per job, RQ's fastest worker); finished jobs counted in its registry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from bench.common import child
from bench.peers import Side

QUEUE = "bench"


def noop() -> None:
    return None


class RqSide(Side):
    name = "rq"
    setup = "rq: `SimpleWorker` (no fork per job), one job at a time per process; finished jobs kept in its registry"

    def enqueue(self, url: str, count: int) -> float:
        from rq import Queue

        queue = Queue(QUEUE, connection=redis.Redis.from_url(url))
        started = time.perf_counter()
        for _ in range(count):
            queue.enqueue(noop)
        return time.perf_counter() - started

    def at_once(self, processes: int, concurrency: int) -> int:
        return processes

    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        return [child(["-m", "bench.peers.rq_side", url], log=log_dir / f"rq-{i}.log") for i in range(processes)]

    def done(self, client: redis.Redis) -> int:
        return int(client.zcard(f"rq:finished:{QUEUE}"))


def main(url: str) -> None:
    from rq import Queue, SimpleWorker

    connection = redis.Redis.from_url(url)
    SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection).work()


if __name__ == "__main__":
    main(sys.argv[1])
