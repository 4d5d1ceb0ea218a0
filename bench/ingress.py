"""Benchmark 2, endpoint ingress: SendMessage over HTTP, ours against the a2a-sdk's server.

Each server runs in its own process on this machine: ours is ``manage.py serve`` (one
embedded worker running the no-op agent, on the private Redis) under uvicorn and under
daphne; the reference is the SDK's Starlette app (in-memory task store, an executor that
completes at once) under uvicorn. Non-blocking sends (``returnImmediately``) are fired at
concurrency 1, 16 and 64; blocking sends measure the round trip through queue and worker.
Each of our levels starts once the embedded worker has finished the tasks of the level
before, so that no level pays for another's backlog.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import redis

from bench.common import RedisServer, Table, base_env, child, fmt, free_port, median, percentile, ratio, stop_all
from bench.loadgen import LoadResult, request_bytes, run_load
from queueapp.keys import Keys

LEVELS = (1, 16, 64)
BLOCKING_LEVELS = (1, 16)
SETTLE_TIMEOUT_S = 300


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    failure: str = ""
    redis_url: str = ""  # where its tasks are queued; empty for the SDK's in-memory server

    def start(self, log_dir: Path) -> bool:
        log = log_dir / f"{self.name.replace(' ', '-')}.log"
        self.process = child([*self.args, *([str(self.port)] if "serve" not in self.args else ["--port", str(self.port)])], self.env, log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.failure = (log.read_text(errors="replace").strip().splitlines() or ["exited"])[-1][:200]
                return False
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.failure = "not healthy after 60 s"
        return False

    def stop(self) -> None:
        if self.process:
            stop_all([self.process])

    def settle(self) -> None:
        """Wait until no task is waiting or running: a blocking send would otherwise queue behind the last level's."""
        if not self.redis_url:
            return
        keys, client = Keys(), redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        try:
            while client.llen(keys.queue) or client.zcard(keys.index_active):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: tasks still unfinished after {SETTLE_TIMEOUT_S} s")
                time.sleep(0.2)
        finally:
            client.close()


def send_message(port: int, *, blocking: bool) -> bytes:
    """One JSON-RPC SendMessage request with a fresh message id (ours deduplicates by id)."""
    params: dict = {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "ping"}]}}
    if not blocking:
        params["configuration"] = {"returnImmediately": True}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
    return request_bytes("127.0.0.1", port, "/a2a", body, {"A2A-Version": "1.0"})


def sdk_available() -> bool:
    """The SDK's server needs its ``http-server`` extra (Starlette), from requirements-bench.txt."""
    return all(importlib.util.find_spec(name) is not None for name in ("starlette", "sse_starlette"))


def servers(redis_url: str, which: list[str]) -> list[Server]:
    env = base_env(redis_url, tempfile.mkdtemp(prefix="a2a-bench-"), A2A_AGENT="noop", A2A_EMBEDDED_WORKERS="1")
    known = {
        "sdk": Server("a2a-sdk (uvicorn)", ["-m", "bench.sdk_server"]),
        "uvicorn": Server("ours (uvicorn)", ["manage.py", "serve", "--server", "uvicorn"], env, redis_url=redis_url),
        "daphne": Server("ours (daphne)", ["manage.py", "serve", "--server", "daphne"], env, redis_url=redis_url),
    }
    return [known[name] for name in which]


@dataclass
class Samples:
    runs: dict[tuple[str, str, int], list[LoadResult]] = field(default_factory=dict)

    def add(self, key: tuple[str, str, int], result: LoadResult) -> None:
        self.runs.setdefault(key, []).append(result)

    def rps(self, key: tuple[str, str, int]) -> float:
        return median([r.rps for r in self.runs.get(key, [])])

    def latency(self, key: tuple[str, str, int], pct: float) -> float:
        return median([percentile(r.latencies_ms, pct) for r in self.runs.get(key, [])])

    def errors(self, key: tuple[str, str, int]) -> int:
        return sum(r.errors for r in self.runs.get(key, []))


def run(server: RedisServer, *, seconds: float, rounds: int, which: list[str] | None = None, levels: tuple[int, ...] = LEVELS) -> tuple[Table, Samples]:
    log_dir = Path(tempfile.mkdtemp(prefix="a2a-bench-logs-"))
    which = which or ["sdk", "uvicorn", "daphne"]
    skipped = "sdk" in which and not sdk_available()
    started = servers(server.url, [name for name in which if not (name == "sdk" and skipped)])
    samples, failed = Samples(), []
    try:
        for srv in started:
            if not srv.start(log_dir):
                failed.append(srv)
        live = [s for s in started if s not in failed]
        for _ in range(rounds):
            for srv in live:  # servers take turns, so that noise spreads over all of them
                for mode, mode_levels in (("non-blocking", levels), ("blocking", tuple(c for c in BLOCKING_LEVELS if c in levels))):
                    for concurrency in mode_levels:
                        srv.settle()
                        result = asyncio.run(
                            run_load("127.0.0.1", srv.port, lambda s=srv, b=(mode == "blocking"): send_message(s.port, blocking=b), concurrency=concurrency, seconds=seconds)
                        )
                        samples.add((srv.name, mode, concurrency), result)
    finally:
        for srv in started:
            srv.stop()
    out = table(samples, started, failed, seconds=seconds, rounds=rounds, levels=levels)
    if skipped:
        out.notes.append("a2a-sdk's server not run: it needs a2a-sdk[http-server] (pip install -r requirements-bench.txt)")
    return out, samples


def table(samples: Samples, started: list[Server], failed: list[Server], *, seconds: float, rounds: int, levels: tuple[int, ...]) -> Table:
    out = Table(
        f"2. Endpoint ingress: JSON-RPC SendMessage, {seconds:g} s per level, median of {rounds} rounds",
        ["server", "mode", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "vs a2a-sdk (requests/s)"],
    )
    reference = "a2a-sdk (uvicorn)"
    for mode, mode_levels in (("non-blocking", levels), ("blocking", tuple(c for c in BLOCKING_LEVELS if c in levels))):
        for concurrency in mode_levels:
            for srv in started:
                key = (srv.name, mode, concurrency)
                if key not in samples.runs:
                    continue
                versus = "-" if srv.name == reference else ratio(samples.rps(key), samples.rps((reference, mode, concurrency)))
                out.add(srv.name, mode, concurrency, fmt(samples.rps(key)), fmt(samples.latency(key, 50), 1), fmt(samples.latency(key, 99), 1), samples.errors(key), versus)
    for srv in failed:
        out.notes.append(f"{srv.name} did not start: {srv.failure}")
    out.notes.append("goal: non-blocking requests/s at least 1.0x the a2a-sdk's server at each concurrency")
    out.notes.append("ours persists every task to Redis and runs it on one embedded worker in the same process; the SDK keeps tasks in memory")
    out.notes.append("each of our levels starts once the worker has finished the previous level's tasks")
    return out
