"""Celery with its Redis broker and Redis result backend (a finished task leaves a result, as ours does).

Two rows: its default prefork pool with one child per worker process (P jobs at once, a
tenth of ours at the default concurrency), and P worker processes with a pool of C
threads each, the same number of jobs at once as ours.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from pathlib import Path

import redis

from bench.common import child
from bench.peers import Side

URL_VARIABLE = "BENCH_REDIS_URL"
RESULT_DB = 1


def _results_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{RESULT_DB}"


@functools.cache
def make_app(url: str):
    """One app per Redis URL: Celery warns when a task name is registered twice."""
    from celery import Celery

    app = Celery("bench", broker=url, backend=_results_url(url))
    app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True, worker_prefetch_multiplier=4)

    @app.task(name="noop")
    def noop() -> None:
        return None

    return app


class CelerySide(Side):
    name = "celery"
    setup = "celery: Redis broker and result backend, one worker with a prefork pool of P processes: P jobs at once"
    _results: redis.Redis | None = None

    def at_once(self, processes: int, concurrency: int) -> int:
        return processes

    def enqueue(self, url: str, count: int) -> float:
        app = make_app(url)
        noop = app.tasks["noop"]
        started = time.perf_counter()
        for _ in range(count):
            noop.delay()
        return time.perf_counter() - started

    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        return [child(_worker_args("prefork", processes, "prefork"), {**os.environ, URL_VARIABLE: url}, log_dir / "celery.log")]

    def done(self, client: redis.Redis) -> int:
        # Each finished task leaves one result key in the result database.
        kwargs = client.connection_pool.connection_kwargs
        if self._results is None or self._results.connection_pool.connection_kwargs["port"] != kwargs["port"]:
            self._results = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=RESULT_DB)
        return int(self._results.dbsize())


class CeleryThreadsSide(CelerySide):
    name = "celery-threads"
    setup = "celery-threads: Redis broker and result backend, P worker processes with a pool of C threads each (`--pool threads`): P x C jobs at once, as ours"

    def at_once(self, processes: int, concurrency: int) -> int:
        return processes * concurrency

    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        env = {**os.environ, URL_VARIABLE: url}
        return [child(_worker_args("threads", concurrency, f"threads{i}"), env, log_dir / f"celery-threads-{i}.log") for i in range(processes)]


def _worker_args(pool: str, concurrency: int, node: str) -> list[str]:
    return [
        "-m", "celery", "-A", "bench.peers.celery_side", "worker", "--pool", pool, "--concurrency", str(concurrency), "--hostname", f"{node}@%h",
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


if os.environ.get(URL_VARIABLE):
    app = make_app(os.environ[URL_VARIABLE])  # the worker imports this module to find the app
