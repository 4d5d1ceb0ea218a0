"""A small A2A JSON-RPC client over httpx, for the demo client, in 1.0 or 0.3.

Results are turned into 1.0 shapes at this edge (``{"task": ...}``, ``statusUpdate`` and
so on), so the rest of the client reads one form whatever version it spoke.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from queueapp import model
from queueapp.model import Json

PROTOCOLS = ("1.0", "0.3")
RetryCallback = Callable[[int, str], object]  # told each failed attempt: its number and what went wrong
EVENT_KINDS_03 = {"task": "task", "message": "message", "status-update": "statusUpdate", "artifact-update": "artifactUpdate"}
METHODS = {
    "1.0": {"send": "SendMessage", "stream": "SendStreamingMessage", "get": "GetTask", "subscribe": "SubscribeToTask"},
    "0.3": {"send": "message/send", "stream": "message/stream", "get": "tasks/get", "subscribe": "tasks/resubscribe"},
}


class ClientError(Exception):
    """The server could not be reached or answered with an error; the text says which."""


def user_message(text: str, protocol: str, context_id: str | None = None) -> Json:
    """The user's message in the request's own version."""
    if protocol == "1.0":
        msg = model.message("user", [model.text_part(text)], context_id=context_id)
    else:
        msg = {"kind": "message", "messageId": model.new_id(), "role": "user", "parts": [{"kind": "text", "text": text}]}
        if context_id:
            msg["contextId"] = context_id
    return msg


def as_v1_event(result: Any, protocol: str) -> Json:
    """A result (SendMessage result or stream event) as a 1.0 StreamResponse dict."""
    if not isinstance(result, dict):
        raise ClientError(f"The server sent a result that is not an object: {str(result)[:200]}")
    if protocol == "1.0":
        return result
    kind = EVENT_KINDS_03.get(str(result.get("kind")))
    if kind is None:
        raise ClientError(f"The server sent a 0.3 result of unknown kind {result.get('kind')!r}")
    return {kind: result}


class A2AClient:
    """JSON-RPC 2.0 calls to ``{url}/a2a`` in one protocol version."""

    def __init__(self, url: str, *, protocol: str = "1.0", token: str | None = None, timeout: float = 30.0):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        self.base_url = url.rstrip("/")
        self.protocol = protocol
        headers = {"Accept": "application/json, text/event-stream"}
        if protocol == "1.0":
            headers["A2A-Version"] = "1.0"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout, read=None), trust_env=False)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> A2AClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _method(self, name: str) -> str:
        return METHODS[self.protocol][name]

    def _envelope(self, method: str, params: Json) -> Json:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    async def wait_healthy(self, attempts: int = 30, interval: float = 1.0, on_retry: RetryCallback | None = None) -> None:
        """Wait for ``GET /health`` to answer 200, or raise ClientError after ``attempts``."""
        last = ""
        for attempt in range(1, attempts + 1):
            try:
                response = await self.http.get(f"{self.base_url}/health", timeout=5)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < attempts:
                if on_retry is not None:
                    on_retry(attempt, last)
                await asyncio.sleep(interval)
        raise ClientError(f"The server at {self.base_url} is not healthy after {attempts} attempts ({last})")

    async def call(self, method: str, params: Json) -> Any:
        try:
            response = await self.http.post(f"{self.base_url}/a2a", json=self._envelope(method, params))
        except httpx.HTTPError as exc:
            raise ClientError(f"{method} failed: cannot reach {self.base_url}/a2a ({type(exc).__name__}: {exc})") from None
        return self._result(method, response.status_code, response.content)

    def _result(self, method: str, status: int, body: bytes) -> Any:
        if status == 401:
            raise ClientError(f"{method} failed: the server needs a credential (HTTP 401); pass a valid --token")
        try:
            data = model.loads(body)
        except ValueError:
            raise ClientError(f"{method} failed: HTTP {status}, not a JSON-RPC answer: {body[:200].decode(errors='replace')}") from None
        if not isinstance(data, dict):
            raise ClientError(f"{method} failed: HTTP {status}, not a JSON-RPC answer")
        if data.get("error"):
            error = data["error"]
            raise ClientError(f"{method} failed: error {error.get('code')}: {error.get('message')}")
        if "result" not in data:
            raise ClientError(f"{method} failed: HTTP {status}, no result in the answer")
        return data["result"]

    async def send(self, text: str, context_id: str | None = None) -> Json:
        """Submit a message without waiting; returns ``{"task": ...}`` or ``{"message": ...}``."""
        params: Json = {"message": user_message(text, self.protocol, context_id)}
        params["configuration"] = {"returnImmediately": True} if self.protocol == "1.0" else {"blocking": False}
        return as_v1_event(await self.call(self._method("send"), params), self.protocol)

    async def get_task(self, task_id: str) -> Json:
        """The task as the server holds it now (GetTask / tasks/get)."""
        result = await self.call(self._method("get"), {"id": task_id})
        if not isinstance(result, dict) or "status" not in result:
            raise ClientError(f"{self._method('get')} returned something that is not a task: {str(result)[:200]}")
        return result

    def stream(self, text: str, context_id: str | None = None) -> AsyncIterator[Json]:
        """Send a message and stream its events (SendStreamingMessage / message/stream)."""
        return self._sse(self._method("stream"), {"message": user_message(text, self.protocol, context_id)})

    def subscribe(self, task_id: str) -> AsyncIterator[Json]:
        """Stream a task's events from now on (SubscribeToTask / tasks/resubscribe)."""
        return self._sse(self._method("subscribe"), {"id": task_id})

    async def _sse(self, method: str, params: Json) -> AsyncIterator[Json]:
        request = self._envelope(method, params)
        try:
            async with self.http.stream("POST", f"{self.base_url}/a2a", json=request) as response:
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    self._result(method, response.status_code, await response.aread())
                    raise ClientError(f"{method} failed: HTTP {response.status_code}, not an event stream")
                async for data in _sse_data(response):
                    yield as_v1_event(self._result(method, response.status_code, data.encode()), self.protocol)
        except httpx.HTTPError as exc:
            raise ClientError(f"{method} failed: the stream from {self.base_url}/a2a broke ({type(exc).__name__}: {exc})") from None


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event; comments (keep-alives) are skipped."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
        elif not line and lines:
            yield "\n".join(lines)
            lines = []
    if lines:
        yield "\n".join(lines)
