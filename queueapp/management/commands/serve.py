"""``manage.py serve``: the ASGI server (A2A endpoint, dashboard, WebSocket) plus embedded workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueapp import embedded, services
from queueapp.agents import AgentLoadError, load_agent
from queueapp.agents.base import Agent
from queueapp.config import Config
from queueapp.connection import is_outage, redis_error_text
from queueapp.datadir import setup_lock
from queueapp.listeners import Listeners, PortUnavailable, bind_all
from queueapp.management.base import STORAGE_NAMES, load_config, open_store, tracing_on
from queueapp.protocol import grpc_server, shutdown, sse
from queueapp.slow_clients import install_daphne, uvicorn_options
from queueapp.startup import lean_log_records
from queueapp.worker import Worker
from queueapp.worker.hooks import close_hooks, default_hooks

log = logging.getLogger("queueapp.serve")

CLOSE_S = 1.0  # how long the ended streams and waits get to finish their responses before the HTTP server stops
WORKER_RESTART_S = 1.0  # the first pause before an embedded worker that an error ended is replaced
WORKER_RESTART_MAX_S = 30.0  # the pauses double up to this while the replacements keep failing
POLL_S = 0.1  # how often a stopping serve looks whether its open requests have ended


class Command(BaseCommand):
    help = "Serve the A2A endpoint (HTTP and gRPC) and the dashboard, with A2A_EMBEDDED_WORKERS workers in-process."
    grpc = None  # the gRPC server, once started
    _grpc_stops: list[asyncio.Task[None]]  # the stops asked of it by signals (see _stop_grpc)
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
        settings.ALLOWED_HOSTS = list(cfg.allowed_hosts)  # Django's were read before --host was
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
        self._grpc_stops = []
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
        tasks = [asyncio.create_task(self._keep_running(workers, i, agent), name=f"embedded-worker-{i}") for i in range(len(workers))]
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

    async def _keep_running(self, workers: list[Worker], index: int, agent: Agent) -> None:
        """Run embedded worker ``index`` until it is stopped; one that a bug ends is replaced.

        A runworker process that dies is restarted by whatever runs it; an embedded worker
        has only this: without it the server would go on taking tasks that nothing runs.
        The shutdown stops whichever worker is in ``workers[index]`` then.
        """
        delay = WORKER_RESTART_S
        while True:
            worker = workers[index]
            started = asyncio.get_running_loop().time()
            try:
                await worker.run()
                return
            except Exception as exc:
                if worker.stopping.is_set():
                    log.exception("Embedded worker ended by an error while stopping, worker_id=%s", worker.id)
                    return
                if asyncio.get_running_loop().time() - started > WORKER_RESTART_MAX_S:
                    delay = WORKER_RESTART_S  # it had been running: start again from the shortest pause
                if is_outage(exc, os_errors=True):  # at its start (its first heartbeat): no bug, no traceback
                    log.warning("Embedded worker could not start: Redis unavailable, worker_id=%s; another starts in %gs, error=%s", worker.id, delay, redis_error_text(exc))
                else:
                    log.exception("Embedded worker ended by an unexpected error, worker_id=%s; another starts in %gs", worker.id, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, WORKER_RESTART_MAX_S)
            if worker.stopping.is_set():  # a stop came while it waited
                return
            workers[index] = Worker(self.shared.store, agent, self.shared.config, hooks=default_hooks(self.shared))

    def _grpc_line(self, cfg: Config) -> str:
        if self.grpc is None:
            return ""
        host = "localhost" if cfg.server_host in ("127.0.0.1", "0.0.0.0", "::") else cfg.server_host
        return f"gRPC:          {grpc_server.listen_address(host, cfg.grpc_port)}{' (TLS)' if cfg.grpc_tls_cert else ''}\n"

    def _stop_grpc(self, grace: float) -> None:
        """Stop taking gRPC calls now, and give those in flight ``grace`` seconds (a signal's stop)."""
        if self.grpc is not None:
            self._grpc_stops.append(asyncio.get_running_loop().create_task(grpc_server.stop(self.grpc, grace), name="stop-grpc"))

    async def _stop(self, workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
        if self._grpc_stops:
            await asyncio.gather(*self._grpc_stops)
        else:
            await grpc_server.stop(self.grpc)
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if workers:
            await close_hooks(self.shared, workers[0].grace_left(), workers[0].hurry)  # what the running tasks left of the grace
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
            uvicorn.Config(
                application,
                host=cfg.server_host,
                port=cfg.server_port,
                lifespan="off",
                log_level="info" if cfg.debug else "warning",
                access_log=cfg.debug,
                ws="websockets-sansio" if _has_sansio() else "auto",
                # The streams are ended when the grace is over (see _Stopping); a response
                # still open a moment later is cut.
                timeout_graceful_shutdown=math.ceil(cfg.worker_shutdown_grace + CLOSE_S),
                **uvicorn_options(cfg),
            )
        )
        stopping = _Stopping(
            workers,
            cfg.worker_shutdown_grace,
            stop_grpc=self._stop_grpc,
            stop_accepting=server.stop_accepting,
            open_requests=lambda: len(server.server_state.tasks),
            stop_now=server.stop_waiting,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.request)
        try:
            await server.serve(sockets=[listeners.http])
        finally:
            await stopping.streams_closed()
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
        stopping = _Stopping(
            workers,
            cfg.worker_shutdown_grace,
            stop_grpc=self._stop_grpc,
            stop_accepting=lambda: _daphne_stop_listening(server),
            open_requests=lambda: _daphne_open_requests(server),
            stop_http=reactor.stop,  # type: ignore[misc]  # Twisted's interfaces declare methods without self
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.request)
        try:
            server.run()  # until the reactor stops: daphne then cancels what is left, without a word
        finally:
            loop.run_until_complete(stopping.streams_closed())
            loop.run_until_complete(self._stop(workers, tasks))


def _daphne_endpoint(sock: socket.socket) -> str:
    """Daphne's endpoint for a socket already bound: Twisted adopts (and closes) the
    descriptor; for IPv6, which that adoption cannot name, it binds the same address itself."""
    if sock.family == socket.AF_INET:
        return f"fd:fileno={sock.detach()}"
    host, port = sock.getsockname()[:2]
    sock.close()
    return f"tcp6:port={port}:interface={host.replace(':', chr(92) + ':')}"


def _daphne_stop_listening(server: Any) -> None:
    """Stop accepting connections on daphne's HTTP ports (its open connections go on)."""
    from twisted.internet import reactor, tcp

    factory = getattr(server, "http_factory", None)
    for reader in reactor.getReaders():  # type: ignore[misc]  # Twisted's interfaces declare methods without self
        if isinstance(reader, tcp.Port) and reader.factory is factory:
            reader.stopListening()


def _daphne_open_requests(server: Any) -> int:
    """How many of daphne's HTTP requests are still being answered (its WebSockets, the
    dashboard's, are closed when it stops, as uvicorn closes them at once)."""
    from daphne.http_protocol import WebRequest

    return sum(
        1
        for protocol, details in getattr(server, "connections", {}).items()
        if isinstance(protocol, WebRequest) and "application_instance" in details and not details["application_instance"].done()
    )


class _Stopping:
    """What a stop signal does.

    The first stops the embedded workers' claiming at once (the grace of their running tasks
    counts from it) and stops taking new connections and gRPC calls (those in flight get the
    grace, and ``CLOSE_S`` to send their answers). Open requests may go on until they end
    or the grace does; then the open event streams are ended cleanly (their clients can
    subscribe again) and the HTTP server stops. A second signal ends the grace at once: running
    tasks go back to the queue, and the streams end now.
    """

    def __init__(
        self,
        workers: list[Worker],
        grace: float,
        *,
        stop_grpc: Callable[[float], None],
        stop_accepting: Callable[[], None],
        open_requests: Callable[[], int],
        stop_http: Callable[[], None] = lambda: None,
        stop_now: Callable[[], None] = lambda: None,
    ):
        self.workers = workers
        self.grace = grace
        self.stop_grpc = stop_grpc
        self.stop_accepting = stop_accepting
        self.open_requests = open_requests
        self.stop_http = stop_http
        self.stop_now = stop_now
        self.requested = False
        self._hurry = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None

    def request(self) -> None:
        if self.requested:
            log.info("Second stop signal: stopping now, running tasks go back to the queue")
            for worker in self.workers:
                worker.stop(now=True)
            self._hurry.set()
            self.stop_grpc(0)
            self.stop_now()
            return
        self.requested = True
        if self.workers:
            log.info("Shutting down: no new requests, draining embedded workers (a second Ctrl-C stops at once)")
        else:
            log.info("Shutting down: no new requests")
        for worker in self.workers:
            worker.stop()
        self.stop_grpc(self.grace + CLOSE_S)
        self.stop_accepting()
        self._closing = asyncio.get_running_loop().create_task(self._close_http(), name="close-http")

    async def streams_closed(self) -> None:
        """Return once the open streams have been ended (at once when no stop was asked for)."""
        if self._closing is not None:
            await self._closing

    async def _close_http(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            while self.open_requests() and not self._hurry.is_set() and loop.time() < deadline:
                await asyncio.wait((hurry,), timeout=min(POLL_S, deadline - loop.time()))
        finally:
            hurry.cancel()
        closed = sse.close_streams()
        if closed:
            log.info("Ended %s open event stream(s): the server is shutting down, their clients can subscribe again", closed)
        waits = shutdown.end_waits()
        if waits:
            log.info("Answered %s waiting request(s) with their tasks as they stand: the server is shutting down", waits)
        until = loop.time() + CLOSE_S
        while (sse.open_streams() or self.open_requests()) and loop.time() < until:
            await asyncio.sleep(POLL_S / 2)
        await asyncio.sleep(POLL_S / 2)  # the streams' last bytes leave before the server closes their connections
        self.stop_http()


class _Server(uvicorn.Server):
    """uvicorn's server, with SIGTERM/SIGINT left to us (see :class:`_Stopping`): it stops
    taking connections at the first, then waits for the open ones (at most the grace and
    ``CLOSE_S``: the streams are ended by then), and stops waiting at the second. serve then
    exits 0 once the embedded workers have handed back their tasks (uvicorn alone would
    re-raise the signal and kill the process first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop_accepting(self) -> None:
        self.should_exit = True

    def stop_waiting(self) -> None:
        self.should_exit = self.force_exit = True


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True
