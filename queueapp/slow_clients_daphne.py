"""The deadlines and the connection cap of :mod:`queueapp.slow_clients`, for daphne.

Twisted's HTTP channel has an idle timer that every byte restarts, so a client trickling
bytes is never timed out. This channel keeps the timer as a deadline per phase instead:
headers, then body; Twisted itself turns it off while a request is answered.
"""

from __future__ import annotations

from typing import ClassVar

from daphne.http_protocol import HTTPFactory
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, Request, _GenericHTTPChannelProtocol

from queueapp.config import Config
from queueapp.slow_clients import request_start, request_timeout

SERVICE_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: 20\r\n\r\nService Unavailable\n"
)


class DeadlineChannel(HTTPChannel):
    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    max_connections: ClassVar[int] = 1000
    open_channels: ClassVar[set[DeadlineChannel]] = set()  # of this process: there is one server
    _bytes_since = False
    _refused = False
    _head = b""  # the first bytes of the request being read (see request_start)

    def connectionMade(self) -> None:
        super().connectionMade()
        self.open_channels.add(self)
        self._expect(self.header_timeout)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.open_channels.discard(self)
        super().connectionLost(reason)

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        self._bytes_since = True
        self._head = request_start(self._head, data)
        LineReceiver.dataReceived(self, data)  # without HTTPChannel's resetTimeout

    def allHeadersReceived(self) -> None:
        if len(self.open_channels) > self.max_connections:
            self._refused = True
            self.write(SERVICE_UNAVAILABLE)
            self.loseConnection()
            return
        super().allHeadersReceived()
        self._expect(self.body_timeout)

    def allContentReceived(self) -> None:
        if not self._refused:
            super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        super().requestDone(request)
        if self.persistent:
            self._head = b""
            self._expect(self.header_timeout)  # keep-alive: the next request has a deadline of its own

    def timeoutConnection(self) -> None:
        if self._bytes_since and not self._handlingRequest:
            self.write(request_timeout(self._head))
        super().timeoutConnection()

    def _expect(self, seconds: float) -> None:
        self._bytes_since = False
        self.setTimeout(seconds)


def factory(cfg: Config) -> type:
    """daphne's HTTP factory, building :class:`DeadlineChannel` channels with ``cfg``'s bounds."""
    limits = {"header_timeout": cfg.server_header_timeout, "body_timeout": cfg.server_body_timeout, "max_connections": cfg.server_max_connections}
    channel = type("ConfiguredDeadlineChannel", (DeadlineChannel,), {**limits, "open_channels": set()})

    class DeadlineHTTPFactory(HTTPFactory):
        def protocol(self) -> _GenericHTTPChannelProtocol:
            return _GenericHTTPChannelProtocol(channel())

    return DeadlineHTTPFactory
