"""The request body cap (``A2A_MAX_BODY_BYTES``), enforced in ASGI before Django reads anything.

Django buffers a whole body before a view runs, so the cap has to sit in front of it:
a declared Content-Length over the cap is refused at once, and a body without one is
read chunk by chunk and refused as soon as it passes the cap. At most the cap is ever
held in memory. Every method is held to it (a GET may carry a body too, and Django would
read it). The refusal is a 413 whose body matches the binding the path belongs to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from queueapp import config as config_module
from queueapp.model import dumps
from queueapp.protocol.errors import PayloadTooLargeError, path_error

# ASGI, as Django's handler (django-stubs) types it.
Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _too_large(scope: Scope, limit: int, size: str) -> bytes:
    error = PayloadTooLargeError(f"The request body is {size}; the limit is {limit} bytes (A2A_MAX_BODY_BYTES).")
    return dumps(path_error(scope.get("path", ""), error)).encode()


async def _refuse(scope: Scope, send: Send, limit: int, size: str) -> None:
    body = _too_large(scope, limit, size)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


class BodyLimitMiddleware:
    """Wrap an ASGI application so that no request body over the cap reaches it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = config_module.get().max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit, f"{declared} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending the whole body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, send, limit, f"more than {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for the disconnect, as Django expects

        await self.app(scope, replay, send)
