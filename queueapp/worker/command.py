"""``manage.py runworker``: claim and run tasks until SIGTERM or SIGINT, without Django.

A worker needs its configuration, its agent and Redis, and nothing of Django's: Django's
set-up, its management machinery and the apps took more than half of the CPU a worker
spent from process start to its first claim. So ``manage.py`` hands ``runworker`` to
:func:`main` before it loads Django, and the Django command of the same name
(``queueapp/management/commands/runworker.py``, for ``django-admin`` and ``call_command``)
runs the same :func:`prepare` and :func:`work`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import sys
import time
from collections.abc import Coroutine
from typing import Any

from queueapp import config as config_module
from queueapp import embedded, services
from queueapp.agents import Agent, AgentLoadError, load_agent
from queueapp.startup import StartError, lean_log_records, load_config, logging_config, open_store, tracing_on
from queueapp.store import QueueStore
from queueapp.worker import Worker
from queueapp.worker.hooks import close_hooks, default_hooks
from queueapp.worker.lifecycle import STOP_SIGNALS

log = logging.getLogger("queueapp.worker")

HELP = "Run an A2A queue worker: claims tasks from Redis and runs the configured agent."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, help="tasks run at once (default A2A_WORKER_CONCURRENCY)")
    parser.add_argument("--agent", help="agent to run (default A2A_AGENT)")


def prepare(concurrency: int | None, agent: str | None) -> tuple[config_module.Config, Agent]:
    """The configuration and the agent, or a StartError saying why a worker cannot run."""
    cfg = load_config(worker_concurrency=concurrency, agent=agent)
    if cfg.storage_kind == "memory":
        raise StartError("A2A_QUEUE_PROVIDER=memory keeps the queue inside one process: use `manage.py serve`, which runs its workers in-process")
    try:
        return cfg, load_agent(cfg.agent, cfg)
    except AgentLoadError as exc:
        raise StartError(str(exc)) from None


async def work(cfg: config_module.Config, agent: Agent) -> None:
    store = await _open_store_until_stopped(cfg)
    if store is None:
        return
    shared = services.Services(cfg, store)
    services.install(shared)
    supervisor = embedded.start_supervision(cfg)
    worker = Worker(shared.store, agent, cfg, hooks=default_hooks(shared))
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await close_hooks(shared, worker.grace_left(), worker.hurry)  # what its running tasks left of the grace
        await shared.close()
        services.install(None)
        await embedded.release(cfg, supervisor)


async def _open_store_until_stopped(cfg: config_module.Config) -> QueueStore | None:
    """The store, or None when a stop signal came while connecting (Redis may still be
    starting, with retries that take seconds): a worker told to stop before it has
    claimed anything just exits, with status 0, as it does once it runs.
    """
    loop = asyncio.get_running_loop()
    starting = asyncio.current_task()
    assert starting is not None
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, starting.cancel)
    try:
        return await open_store(cfg)
    except asyncio.CancelledError:
        starting.uncancel()
        log.info("Worker stopped while starting")
        return None
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop's event loop when uvloop is installed (uvicorn[standard] brings it
    on Linux and macOS), else on asyncio's own.

    A worker is mostly event-loop work: callbacks, futures and socket reads around each
    script call. uvloop's loop does it in C, for about 8% less CPU per no-op task.
    """
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def main(argv: list[str]) -> int:
    """``manage.py runworker [--concurrency N] [--agent NAME]``; errors print as Django's commands print them."""
    parser = argparse.ArgumentParser(prog="manage.py runworker", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    # Log times in UTC, as every other process does (Django sets TZ from TIME_ZONE = "UTC").
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        cfg = load_config()  # the log levels first, so that loading the agent can log
        logging.config.dictConfig(logging_config(cfg.debug))
        lean_log_records()
        logging.captureWarnings(True)
        cfg, agent = prepare(args.concurrency, args.agent)
        with tracing_on():
            run_loop(work(cfg, agent))
    except StartError as exc:
        print(f"CommandError: {exc}", file=sys.stderr)
        return 1
    return 0
