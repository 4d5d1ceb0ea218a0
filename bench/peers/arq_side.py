"""arq: asyncio worker processes with ``max_jobs`` equal to our concurrency and a short poll delay."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import redis

from bench.common import child
from bench.peers import Side

QUEUE = "arq:queue"
POLL_DELAY_S = 0.01  # arq's default of 0.5 s caps it far below what it can do


async def noop(ctx: dict) -> None:
    return None


class ArqSide(Side):
    name = "arq"
    setup = f"arq: `Worker(max_jobs=concurrency, poll_delay={POLL_DELAY_S})`, results kept (its default)"

    def enqueue(self, url: str, count: int) -> float:
        return asyncio.run(self._enqueue(url, count))

    async def _enqueue(self, url: str, count: int) -> float:
        from arq import create_pool
        from arq.connections import RedisSettings

        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            started = time.perf_counter()
            for _ in range(count):
                await pool.enqueue_job("noop")
            return time.perf_counter() - started
        finally:
            await pool.aclose()

    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        return [child(["-m", "bench.peers.arq_side", url, str(concurrency)], log=log_dir / f"arq-{i}.log") for i in range(processes)]

    def done(self, client: redis.Redis) -> int:
        # A job stays in the queue's sorted set until it has finished.
        total = int(client.get("bench:enqueued") or 0)
        return total - int(client.zcard(QUEUE))


def main(url: str, concurrency: int) -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker

    asyncio.set_event_loop(asyncio.new_event_loop())
    Worker(functions=[noop], redis_settings=RedisSettings.from_dsn(url), max_jobs=concurrency, poll_delay=POLL_DELAY_S).run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
