"""Server-Sent Events: frames, keep-alive comments, and nothing left running after a disconnect.

The events are read by a pump task into a small queue, so the response can send a
keep-alive comment when the task is quiet without cancelling the reader in the middle
of a read. When the client goes away, the ASGI server cancels the response; the
``finally`` below cancels the pump, which closes the event follower.

A server that shuts down ends its open streams with :func:`close_streams`: each response
then finishes as one whose task ended would, and its client can subscribe again (to
another server, or to this one once it is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from django.http import StreamingHttpResponse

from queueapp.model import Json, dumps
from queueapp.protocol.errors import ProtocolError, from_unexpected

log = logging.getLogger("queueapp.protocol")

QUEUE_SIZE = 256  # events read ahead of a slow client; the pump waits beyond it
CLOSING_COMMENT = b": closing: the server is shutting down; subscribe to the task again to follow it\n\n"


class _Close:
    """What :func:`close_streams` puts in a stream's queue: end the response now."""


_CLOSE = _Close()
Item = Json | ProtocolError | _Close | None

# The queues of the streams open in this process (one event loop serves them all).
_open: set[asyncio.Queue[Item]] = set()


def close_streams() -> int:
    """End every open stream cleanly, at once: each sends a closing comment and finishes its
    response (events read ahead of a slow client are dropped: a client that subscribes again
    gets the task as it stands). Returns how many were open."""
    for queue in _open:
        while not queue.empty():  # room for the close, in a queue a slow client has filled
            queue.get_nowait()
        queue.put_nowait(_CLOSE)
    return len(_open)


def open_streams() -> int:
    """How many streams are open in this process."""
    return len(_open)


def frame(data: Json, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {dumps(data)}\n\n".encode()


async def _pump(events: AsyncGenerator[Json, None], queue: asyncio.Queue[Item]) -> None:
    """Copy events into the queue, then None for their end (or the error that ended them).

    When the response is cancelled this task is cancelled too, and the CancelledError
    passes straight through, closing the event follower on its way out.
    """
    end: ProtocolError | None = None
    try:
        async for event in events:
            await queue.put(event)
    except ProtocolError as exc:
        end = exc
    except Exception as exc:  # Redis away is an outage (a warning, STORAGE_UNAVAILABLE), anything else a bug
        end = from_unexpected(exc, "an event stream")
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()
    await queue.put(end)


async def _frames(
    events: AsyncGenerator[Json, None], encode: Callable[[Json], Json], encode_error: Callable[[ProtocolError], Json], keepalive: float
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_SIZE)
    pump = asyncio.create_task(_pump(events, queue), name="sse-pump")
    _open.add(queue)
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if item is None:
                return
            if isinstance(item, _Close):
                yield CLOSING_COMMENT
                return
            if isinstance(item, ProtocolError):
                yield frame(encode_error(item), event="error")
                return
            try:
                yield frame(encode(item))
            except ProtocolError as exc:
                yield frame(encode_error(exc), event="error")
                return
    finally:
        _open.discard(queue)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump


def sse_response(
    events: AsyncGenerator[Json, None], encode: Callable[[Json], Json], encode_error: Callable[[ProtocolError], Json], keepalive: float
) -> StreamingHttpResponse:
    """A ``text/event-stream`` response of ``encode(event)`` frames."""
    response = StreamingHttpResponse(_frames(events, encode, encode_error, keepalive), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not hold the frames back
    return response
