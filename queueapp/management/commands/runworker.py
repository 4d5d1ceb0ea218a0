"""``manage.py runworker``: claim and run tasks until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio

from django.core.management.base import BaseCommand, CommandError

from queueapp import embedded, runtime
from queueapp.agents import AgentLoadError, load_agent
from queueapp.management.base import load_config, open_store, tracing_on
from queueapp.worker import Worker
from queueapp.worker.hooks import close_hooks, default_hooks


class Command(BaseCommand):
    help = "Run an A2A queue worker: claims tasks from Redis and runs the configured agent."
    # The system checks import the URLconf, and with it every protocol module and the
    # dashboard: a worker uses none of them, and `serve` or `manage.py check` runs them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, help="tasks run at once (default A2A_WORKER_CONCURRENCY)")
        parser.add_argument("--agent", help="agent to run (default A2A_AGENT)")

    def handle(self, *args, **options):
        cfg = load_config(worker_concurrency=options["concurrency"], agent=options["agent"])
        if cfg.storage_kind == "memory":
            raise CommandError("A2A_QUEUE_PROVIDER=memory keeps the queue inside one process: use `manage.py serve`, which runs its workers in-process")
        try:
            agent = load_agent(cfg.agent, cfg)
        except AgentLoadError as exc:
            raise CommandError(str(exc)) from None
        with tracing_on():
            asyncio.run(self._run(cfg, agent))

    async def _run(self, cfg, agent) -> None:
        store = await open_store(cfg)
        runtime.set_store(store)
        supervisor = embedded.start_supervision(cfg)
        worker = Worker(store, agent, cfg, hooks=default_hooks(store, cfg))
        worker.install_signal_handlers()
        try:
            await worker.run()
        finally:
            await close_hooks(store, cfg.worker_shutdown_grace, worker.hurry)
            await store.redis.aclose()
            await embedded.release(cfg, supervisor)
