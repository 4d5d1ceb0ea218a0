"""Bounds on slow and idle HTTP connections for ``serve``, under uvicorn and under daphne.

Both servers wait for a request's headers and body as long as bytes keep coming, however
slowly, and uvicorn keeps a connection that sends nothing at all: one header byte a second
held a connection for good, and a few hundred silent ones held as many sockets. Here each
request gets a deadline for its headers (A2A_SERVER_HEADER_TIMEOUT, counted from the
connection or from the previous response) and then one for its body
(A2A_SERVER_BODY_TIMEOUT); past it the client gets 408 when no response has started, and
the connection is closed. The deadline stops once the request is in: a long answer (a
stream, a WebSocket) is never cut. A request arriving while more than
A2A_SERVER_MAX_CONNECTIONS connections are open gets 503.

The 408 is JSON in the error form of the binding the request's path belongs to, as every
answer on a machine path is; the path is read from the request's first line, kept as it
comes in (a request whose first line is not in yet gets the 1.0 google.rpc.Status form).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from queueapp.config import Config
from queueapp.model import dumps
from queueapp.protocol.errors import RequestTimeoutError, path_error

REQUEST_LINE_LIMIT = 8192  # the most of a request's first bytes kept to read its path from
TIMED_OUT = RequestTimeoutError(
    "The request was not received in time: its headers must come within A2A_SERVER_HEADER_TIMEOUT, "
    "and its body within A2A_SERVER_BODY_TIMEOUT of them. The connection is closed."
)


def request_start(head: bytes, data: bytes) -> bytes:
    """``head``, the first bytes of the request being read, with ``data`` added until its first line is in."""
    if b"\n" in head or len(head) >= REQUEST_LINE_LIMIT:
        return head
    return head + data[: REQUEST_LINE_LIMIT - len(head)]


def request_path(head: bytes) -> str:
    """The path the request that starts with ``head`` names, or "" while its first line is not in."""
    line, newline, _ = head.lstrip(b"\r\n").partition(b"\n")
    words = line.split()
    if not newline or len(words) != 3:
        return ""
    return unquote(urlsplit(words[1].decode("latin-1")).path)


def request_timeout(head: bytes) -> bytes:
    """The whole 408 answer to the request that starts with ``head``."""
    body = dumps(path_error(request_path(head), TIMED_OUT)).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def _base_protocol() -> type:
    """The HTTP protocol uvicorn would pick itself ("auto"): httptools when installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


class _Cycle(Protocol):
    """What the deadlines read of uvicorn's request cycle (h11's and httptools' alike)."""

    more_body: bool
    response_started: bool
    disconnected: bool


class _Deadlines(asyncio.Protocol):
    """Mixed in front of a uvicorn HTTP protocol; relies only on its ``cycle`` and ``transport``."""

    header_timeout: float
    body_timeout: float
    # The protocol's own: the connection, and the request being read or answered (None before the first).
    transport: asyncio.Transport
    cycle: _Cycle | None
    _timer: asyncio.TimerHandle | None = None
    _phase = ""  # "headers", "body" or "" (nothing to wait for)
    _waiting_for: _Cycle | None = None  # the cycle before the awaited request's headers
    _bytes_since = False
    _head = b""  # the first bytes of the request being read (see request_start)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._expect_headers()

    def data_received(self, data: bytes) -> None:
        self._bytes_since = True
        if self._phase == "headers":
            self._head = request_start(self._head, data)
        super().data_received(data)
        if self.transport.get_protocol() is not self:  # upgraded to a WebSocket
            self._disarm()
            return
        cycle = self.cycle
        if self._phase == "headers" and cycle is not None and cycle is not self._waiting_for:
            self._arm("body", self.body_timeout) if cycle.more_body else self._disarm()
        elif self._phase == "body" and cycle is not None and not cycle.more_body:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]  # uvicorn's: the protocol this is mixed in front of
        if not self.transport.is_closing():
            self._expect_headers()  # keep-alive: the next request has a deadline of its own

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _expect_headers(self) -> None:
        self._waiting_for, self._bytes_since, self._head = self.cycle, False, b""
        self._arm("headers", self.header_timeout)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, ""

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if self._phase == "body" else None
        answered = cycle is not None and cycle.response_started
        if (self._phase == "headers" and self._bytes_since) or (cycle is not None and not answered):
            self.transport.write(request_timeout(self._head))
        if cycle is not None:
            cycle.disconnected = True  # the app's answer, if it comes, goes nowhere
        self.transport.close()


def uvicorn_protocol(cfg: Config) -> type:
    """uvicorn's HTTP protocol class with the deadlines of ``cfg``."""
    base = _base_protocol()
    return type("DeadlineHTTPProtocol", (_Deadlines, base), {"header_timeout": cfg.server_header_timeout, "body_timeout": cfg.server_body_timeout})


def uvicorn_options(cfg: Config) -> dict[str, Any]:
    """What to give ``uvicorn.Config``: the protocol, and the connection cap.

    uvicorn answers 503 to a request arriving while more than ``limit_concurrency - 1``
    other connections are open (its count includes the asking one), hence the ``+ 1``.
    """
    return {"http": uvicorn_protocol(cfg), "limit_concurrency": cfg.server_max_connections + 1}


# ---- daphne (Twisted) -------------------------------------------------------------------------


def install_daphne(cfg: Config) -> None:
    """Make daphne's Server build its HTTP channels with the deadlines and the cap of ``cfg``.

    ``Server.run`` builds its factory from the name ``HTTPFactory`` of its module and takes
    no factory of its own, so that name is what is replaced.
    """
    import daphne.server

    from queueapp import slow_clients_daphne

    daphne.server.HTTPFactory = slow_clients_daphne.factory(cfg)
