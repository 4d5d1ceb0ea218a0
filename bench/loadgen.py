"""A lean HTTP/1.1 load generator: keep-alive connections on raw asyncio streams.

A general-purpose client (httpx) spends more CPU per request than the servers under
test, and on a small machine it would measure itself. This one writes prepared
request bytes and reads back the status, headers and body (Content-Length or chunked).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else float("nan")


def request_bytes(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body)
            body += chunk[:-2]
    raise ValueError("a response with neither Content-Length nor chunked encoding")


async def _connection(host: str, port: int, make_request: Callable[[], bytes], until: float, warm_until: float, result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (now := time.perf_counter()) < until:
            writer.write(make_request())
            try:
                status, _ = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                result.errors += 1
                return
            if now >= warm_until:
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == 200:
                    result.latencies_ms.append((time.perf_counter() - now) * 1000)
                else:
                    result.errors += 1
    finally:
        writer.close()


async def run_load(host: str, port: int, make_request: Callable[[], bytes], *, concurrency: int, seconds: float, warmup: float = 0.5) -> LoadResult:
    """``concurrency`` connections send requests back to back for ``warmup + seconds``; only the last ``seconds`` count."""
    result = LoadResult()
    start = time.perf_counter()
    warm_until, until = start + warmup, start + warmup + seconds
    await asyncio.gather(*(_connection(host, port, make_request, until, warm_until, result) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - warm_until
    return result
