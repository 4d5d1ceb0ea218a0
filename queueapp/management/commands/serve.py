"""``manage.py serve``: the ASGI server (A2A endpoint, dashboard, WebSocket) plus embedded workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueapp import embedded, services
from queueapp.agents import AgentLoadError, load_agent
from queueapp.agents.base import Agent
from queueapp.config import Config
from queueapp.datadir import setup_lock
from queueapp.listeners import Listeners, PortUnavailable, bind_all
from queueapp.management.base import STORAGE_NAMES, load_config, open_store, tracing_on
from queueapp.protocol import grpc_server
from queueapp.slow_clients import install_daphne, uvicorn_options
from queueapp.startup import lean_log_records
from queueapp.worker import Worker
from queueapp.worker.hooks import close_hooks, default_hooks

log = logging.getLogger("queueapp.serve")


class Command(BaseCommand):
    help = "Serve the A2A endpoint (HTTP and gRPC) and the dashboard, with A2A_EMBEDDED_WORKERS workers in-process."
    grpc = None  # the gRPC server, once started
    shared: services.Services  # what the process shares (store, push delivery...), built by _start

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, help="HTTP port (default A2A_SERVER_PORT)")
        parser.add_argument("--host", help="address to listen on (default A2A_SERVER_HOST)")
        parser.add_argument("--workers", type=int, help="embedded workers (default A2A_EMBEDDED_WORKERS)")
        parser.add_argument("--server", choices=["uvicorn", "daphne"], help="ASGI server (default A2A_SERVER_ASGI)")
        parser.add_argument("--grpc-port", type=int, help="gRPC port, 0 for none (default A2A_GRPC_PORT)")

    def handle(self, *args: str, **options: Any) -> None:
        lean_log_records()  # three log lines per task here: enqueued, dequeued, completed
        cfg = load_config(server_port=options["port"], server_host=options["host"], embedded_workers=options["workers"], server_asgi=options["server"], grpc_port=options["grpc_port"])
        if cfg.storage_kind == "memory" and cfg.embedded_workers == 0:
            raise CommandError("A2A_QUEUE_PROVIDER=memory needs A2A_EMBEDDED_WORKERS of 1 or more: no other process can reach its queue")
        try:
            agent = load_agent(cfg.agent, cfg)
        except AgentLoadError as exc:
            raise CommandError(str(exc)) from None
        # Ports first: one in use stops here, before the banner or any worker.
        try:
            listeners = bind_all(cfg)
        except PortUnavailable as exc:
            raise CommandError(str(exc)) from None
        try:
            with setup_lock(cfg.data_dir):  # several serve starting at once on a fresh folder
                call_command("migrate", interactive=False, verbosity=0)
                self._bootstrap()
            with tracing_on():
                if cfg.server_asgi == "daphne":
                    self._run_daphne(cfg, agent, listeners)
                else:
                    asyncio.run(self._run_uvicorn(cfg, agent, listeners))
        finally:
            listeners.close()

    def _bootstrap(self) -> None:
        try:
            from dashboard.setup import ensure_admin_user
        except ImportError:
            return
        ensure_admin_user(self.stdout)

    async def _start(self, cfg: Config, agent: Agent, listeners: Listeners) -> tuple[list[Worker], list[asyncio.Task[None]]]:
        shared = self.shared = services.Services(cfg, await open_store(cfg))
        services.install(shared)
        self._supervisor = embedded.start_supervision(cfg)
        try:
            self.grpc = await grpc_server.start(cfg, listeners.take("grpc") if "grpc" in listeners.sockets else None)
        except grpc_server.GrpcStartError as exc:
            await self._close_services()
            raise CommandError(str(exc)) from None
        log.info("A2A server starting with %s", STORAGE_NAMES[cfg.storage_kind])
        workers = [Worker(shared.store, agent, cfg, hooks=default_hooks(shared)) for _ in range(cfg.embedded_workers)]
        tasks = [asyncio.create_task(w.run(), name=f"embedded-worker-{i}") for i, w in enumerate(workers)]
        oidc = shared.authenticator.oidc
        if oidc is not None:
            tasks.append(asyncio.create_task(oidc.prefetch(), name="oidc-prefetch"))
        base = f"http://{'localhost' if cfg.server_host in ('127.0.0.1', '0.0.0.0', '::') else cfg.server_host}:{cfg.server_port}"
        self.stdout.write(
            f"A2A endpoint:  {base}/a2a\n{self._grpc_line(cfg)}Agent card:    {base}/.well-known/agent-card.json\nDashboard:     {base}/\nHealth:        {base}/health\n"
            f"Embedded workers: {cfg.embedded_workers}, agent: {agent.name}"
        )
        self.stdout.flush()
        return workers, tasks

    def _grpc_line(self, cfg: Config) -> str:
        if self.grpc is None:
            return ""
        host = "localhost" if cfg.server_host in ("127.0.0.1", "0.0.0.0", "::") else cfg.server_host
        return f"gRPC:          {grpc_server.listen_address(host, cfg.grpc_port)}{' (TLS)' if cfg.grpc_tls_cert else ''}\n"

    async def _stop(self, workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
        await grpc_server.stop(self.grpc)
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if workers:
            await close_hooks(self.shared, self.shared.config.worker_shutdown_grace, workers[0].hurry)
        await self._close_services()

    async def _close_services(self) -> None:
        """Close what the process shares, then let go of the embedded Redis (its last user stops it)."""
        await self.shared.close()
        services.install(None)
        await embedded.release(self.shared.config, self._supervisor)

    async def _run_uvicorn(self, cfg: Config, agent: Agent, listeners: Listeners) -> None:
        from a2a_site.asgi import application

        workers, tasks = await self._start(cfg, agent, listeners)
        server = _Server(
            uvicorn.Config(application, host=cfg.server_host, port=cfg.server_port, lifespan="off", log_level="info" if cfg.debug else "warning", access_log=cfg.debug, ws="websockets-sansio" if _has_sansio() else "auto", **uvicorn_options(cfg))
        )
        server.workers = workers
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_exit)
        try:
            await server.serve(sockets=[listeners.http])
        finally:
            await self._stop(workers, tasks)

    def _run_daphne(self, cfg: Config, agent: Agent, listeners: Listeners) -> None:
        # Importing daphne's server installs Twisted's asyncio reactor on a loop of its own
        # (Django setup already did so, with "daphne" in INSTALLED_APPS): run on that loop.
        from daphne.server import Server
        from twisted.internet import reactor

        from a2a_site.asgi import application

        install_daphne(cfg)

        loop = reactor._asyncioEventloop
        asyncio.set_event_loop(loop)
        workers, tasks = loop.run_until_complete(self._start(cfg, agent, listeners))
        server = Server(application, endpoints=[_daphne_endpoint(listeners.take("http"))], signal_handlers=False, verbosity=1 if cfg.debug else 0)
        stopping = _Stopping(workers, reactor.stop)  # type: ignore[misc]  # Twisted's interfaces declare methods without self
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.request)
        try:
            server.run()
        finally:
            loop.run_until_complete(self._stop(workers, tasks))


def _daphne_endpoint(sock: socket.socket) -> str:
    """Daphne's endpoint for a socket already bound: Twisted adopts (and closes) the
    descriptor; for IPv6, which that adoption cannot name, it binds the same address itself."""
    if sock.family == socket.AF_INET:
        return f"fd:fileno={sock.detach()}"
    host, port = sock.getsockname()[:2]
    sock.close()
    return f"tcp6:port={port}:interface={host.replace(':', chr(92) + ':')}"


class _Stopping:
    """What a stop signal does: the first stops the HTTP side and lets the embedded workers
    finish within the grace; a second puts their running tasks back on the queue at once."""

    def __init__(self, workers: list[Worker], stop_http: Callable[[], None]):
        self.workers = workers
        self.stop_http = stop_http
        self.requested = False

    def request(self) -> None:
        if self.requested:
            log.info("Second stop signal: stopping now, running tasks go back to the queue")
            for worker in self.workers:
                worker.stop(now=True)
            return
        self.requested = True
        if self.workers:
            log.info("Shutting down: no new requests, draining embedded workers (a second Ctrl-C stops at once)")
        else:
            log.info("Shutting down: no new requests")
        self.stop_http()


class _Server(uvicorn.Server):
    """uvicorn's server, with SIGTERM/SIGINT left to us: we stop the HTTP side, then drain
    the embedded workers, then exit 0 (uvicorn alone would re-raise the signal and kill the
    process before the workers could hand back their tasks)."""

    workers: list[Worker] = []

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        if not hasattr(self, "_stopping"):
            self._stopping = _Stopping(self.workers, self._exit)
        if self._stopping.requested:
            self.force_exit = True
        self._stopping.request()

    def _exit(self) -> None:
        self.should_exit = True


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True
