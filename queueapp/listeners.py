"""The listening sockets of ``serve``, bound before anything else starts.

Binding first means a port in use stops ``serve`` with one line naming it, before the
banner is printed or a worker claims a task. Each listener is bound here and handed to
its server already open.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from queueapp.config import Config


class PortUnavailable(RuntimeError):
    """A port ``serve`` needs cannot be bound."""


@dataclass
class Listeners:
    """Every socket ``serve`` listens on, by purpose (``http``; other servers add theirs)."""

    sockets: dict[str, socket.socket] = field(default_factory=dict)

    @property
    def http(self) -> socket.socket:
        return self.sockets["http"]

    def take(self, purpose: str) -> socket.socket:
        """Hand a socket over to a server that will own (and close) it."""
        return self.sockets.pop(purpose)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


def bind_tcp(purpose: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or :class:`PortUnavailable` saying which and why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise PortUnavailable(f"cannot listen on {shown} ({purpose} port {port}): {reason}") from None
    # Accepted connections inherit this. A server handed a socket does not set it itself, and
    # with Nagle on, a response written in two parts waits for the client's delayed ACK:
    # 44 ms per request instead of 2 (uvicorn, /health, sequential).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bind_all(config: Config) -> Listeners:
    """Bind every port ``serve`` listens on; if one fails, close those already bound."""
    listeners = Listeners()
    try:
        listeners.sockets["http"] = bind_tcp("HTTP", config.server_host, config.server_port)
        if config.grpc_port:
            listeners.sockets["grpc"] = bind_tcp("gRPC", config.server_host, config.grpc_port)
    except PortUnavailable:
        listeners.close()
        raise
    return listeners
