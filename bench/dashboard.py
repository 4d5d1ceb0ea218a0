"""Benchmark 3, live dashboard latency: a change in Redis to the WebSocket frame at a client.

``serve`` runs with no workers, so every task created is one change that raises the
waiting count by one, and the count is in every frame (``data-testid="queue-length"``).
A writer creates tasks at a steady rate; each client reads frames and notes, for each
change, when the first frame that shows it arrived. Latency runs from the moment the
write was acknowledged by Redis to that frame.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
import websockets

from bench.common import RedisServer, Table, base_env, fmt, median, percentile
from bench.ingress import Server
from bench.peers.ours import KEYS, user_message
from queueapp.config import SETTINGS
from queueapp.store import QueueStore

QUEUE_LENGTH = re.compile(rb'data-testid="queue-length">\s*(\d+)\s*<')
SETTLE_S = 1.5  # after the last change, how long clients may take to show it


@dataclass
class ClientLog:
    frames: list[tuple[float, int]] = field(default_factory=list)  # (arrival, waiting count shown)


@dataclass
class LevelResult:
    latencies_ms: list[float] = field(default_factory=list)
    frames_per_s: list[float] = field(default_factory=list)
    achieved: list[float] = field(default_factory=list)  # changes per second the writer really made
    missed: int = 0


async def client(url: str, origin: str, log: ClientLog, stop: asyncio.Event) -> None:
    async with websockets.connect(url, origin=origin, max_size=None) as ws:
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                continue
            data = frame.encode() if isinstance(frame, str) else frame
            match = QUEUE_LENGTH.search(data)
            if match:
                log.frames.append((time.perf_counter(), int(match.group(1))))


async def writer(store: QueueStore, rate: int, seconds: float) -> list[float]:
    """Create tasks at ``rate`` per second; the time each one was acknowledged, in order."""
    done: list[float] = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await store.create_task(user_message())
        done.append(time.perf_counter())
    return done


def score(changes: list[float], started: float, logs: list[ClientLog], seconds: float, result: LevelResult) -> None:
    if changes and changes[-1] > started:
        result.achieved.append(len(changes) / (changes[-1] - started))
    for log in logs:
        result.frames_per_s.append(sum(1 for t, _ in log.frames if t <= changes[-1]) / seconds if changes else 0)
        index = 0
        for number, changed_at in enumerate(changes, start=1):
            while index < len(log.frames) and (log.frames[index][1] < number or log.frames[index][0] < changed_at):
                index += 1
            if index == len(log.frames):
                result.missed += len(changes) - number + 1
                break
            result.latencies_ms.append((log.frames[index][0] - changed_at) * 1000)


async def one_level(server: Server, redis_url: str, rate: int, seconds: float, clients: int, result: LevelResult) -> None:
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = QueueStore(redis_client, KEYS)
    try:
        await redis_client.flushall()
        stop = asyncio.Event()
        logs = [ClientLog() for _ in range(clients)]
        url = f"ws://127.0.0.1:{server.port}/ws/dashboard/?page=overview"
        readers = [asyncio.create_task(client(url, f"http://127.0.0.1:{server.port}", log, stop)) for log in logs]
        await asyncio.sleep(1.0)  # connected, first frame shown
        for log in logs:
            log.frames.clear()
        started = time.perf_counter()
        changes = await writer(store, rate, seconds)
        await asyncio.sleep(SETTLE_S)
        stop.set()
        await asyncio.gather(*readers)
        score(changes, started, logs, seconds, result)
    finally:
        await redis_client.aclose()


def run(server: RedisServer, *, rates: list[int], seconds: float, clients: int, rounds: int, max_fps: float | None = None) -> tuple[Table, dict[int, LevelResult]]:
    extra = {"A2A_DASHBOARD_MAX_FPS": str(max_fps)} if max_fps else {}
    env = base_env(server.url, tempfile.mkdtemp(prefix="a2a-bench-"), A2A_EMBEDDED_WORKERS="0", A2A_DASHBOARD_PUBLIC="true", **extra)
    serve = Server("ours (uvicorn)", ["manage.py", "serve", "--server", "uvicorn"], env)
    results = {rate: LevelResult() for rate in rates}
    if not serve.start(Path(tempfile.mkdtemp(prefix="a2a-bench-logs-"))):
        raise RuntimeError(f"serve did not start: {serve.failure}")
    try:
        for _ in range(rounds):
            for rate in rates:
                asyncio.run(one_level(serve, server.url, rate, seconds, clients, results[rate]))
    finally:
        serve.stop()
    return table(results, seconds=seconds, clients=clients, rounds=rounds, max_fps=max_fps), results


def table(results: dict[int, LevelResult], *, seconds: float, clients: int, rounds: int, max_fps: float | None = None) -> Table:
    fps = f"A2A_DASHBOARD_MAX_FPS={max_fps:g}" if max_fps else "A2A_DASHBOARD_MAX_FPS at its default"
    out = Table(
        f"3. Dashboard latency: change in Redis to WebSocket frame, {clients} clients on the overview, {fps}, {seconds:g} s per rate, {rounds} round(s)",
        ["changes/s asked", "changes/s made", "p50 ms", "p99 ms", "frames/s per client (median)", "changes never shown"],
    )
    for rate, res in results.items():
        out.add(rate, fmt(median(res.achieved)), fmt(percentile(res.latencies_ms, 50), 1), fmt(percentile(res.latencies_ms, 99), 1), fmt(median(res.frames_per_s), 1), res.missed)
    default_fps = SETTINGS["A2A_DASHBOARD_MAX_FPS"].default
    out.notes.append(f"goal: p99 under 250 ms at 1,000 changes per second, with each client's frame rate bounded (A2A_DASHBOARD_MAX_FPS, default {default_fps})")
    out.notes.append("a change counts as shown by the first frame whose waiting count includes it; latencies pool every client's")
    return out
