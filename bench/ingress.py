"""Benchmark 2, endpoint ingress: SendMessage over JSON-RPC and gRPC, ours against the a2a-sdk's server.

Each server runs in its own process on this machine: ours is ``manage.py serve`` (one
embedded worker running the no-op agent, on the private Redis) under uvicorn and under
daphne; the reference is the SDK's Starlette app (in-memory task store, an executor that
completes at once) under uvicorn. Ours under uvicorn and the SDK's server also answer
gRPC (each a ``grpc.aio`` server on its process's loop; the SDK's with its own
``GrpcHandler``), measured with the same levels from one channel. Non-blocking sends (``returnImmediately``) are fired at
concurrency 1, 16 and 64; blocking sends measure the round trip through queue and worker.
Each of our levels starts once the embedded worker has finished the tasks of the level
before, so that no level pays for another's backlog, and is measured on Redis (CPU and
commands per task, ``bench/redis_cost.py``) from its start until its last task finished.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from bench.common import RedisServer, Table, base_env, child, fmt, free_port, median, percentile, ratio, stop_all
from bench.grpc_load import run_grpc_load
from bench.loadgen import LoadResult, request_bytes, run_load
from bench.redis_cost import Cost, RedisMeter
from queueapp.store import Keys

OURS_DOES = (
    "accepts each request and queues its task in Redis while the one embedded worker, in the same process,"
    " claims and runs the queued tasks; a non-blocking send is answered once queued, a blocking one once finished"
)
SDK_DOES = "accepts each request and runs its task in-process (an executor that completes at once), tasks kept in memory, no Redis"
LEVELS = (1, 16, 64)
BLOCKING_LEVELS = (1, 16)
SETTLE_TIMEOUT_S = 300
REFERENCE = {"JSON-RPC": "a2a-sdk (uvicorn)", "gRPC": "a2a-sdk, gRPC"}
SDK_GRPC = REFERENCE["gRPC"]


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    failure: str = ""
    redis_url: str = ""  # where its tasks are queued; empty for the SDK's in-memory server
    does: str = ""  # what it does with a request inside the timed window, for the table
    grpc_port: int = 0  # measured over gRPC too, at this port, when set
    grpc_name: str = ""  # its rows' name for gRPC

    @property
    def bindings(self) -> tuple[str, ...]:
        return ("JSON-RPC", "gRPC") if self.grpc_port else ("JSON-RPC",)

    def row_name(self, binding: str) -> str:
        return self.grpc_name if binding == "gRPC" else self.name

    def start(self, log_dir: Path) -> bool:
        log = log_dir / f"{self.name.replace(' ', '-')}.log"
        ports = [str(self.port), *([str(self.grpc_port)] if self.grpc_port else [])]
        self.process = child([*self.args, *(ports if "serve" not in self.args else ["--port", str(self.port)])], self.env, log)
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

    def settle(self, meter: RedisMeter | None) -> None:
        """Wait until no task is waiting or running: a blocking send would otherwise queue behind the last level's."""
        if meter is None:
            return
        keys = Keys()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while any(meter.poll(("LLEN", keys.queue), ("ZCARD", keys.index_active))):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: tasks still unfinished after {SETTLE_TIMEOUT_S} s")
            time.sleep(0.2)

    def measure(self, meter: RedisMeter | None, concurrency: int, seconds: float, *, blocking: bool, binding: str = "JSON-RPC") -> tuple[LoadResult, Cost | None]:
        """One level: the load, then (on a side with Redis) its cost per task once its last task finished."""
        self.settle(meter)
        before = meter.read() if meter else None
        if binding == "gRPC":
            load = run_grpc_load(f"127.0.0.1:{self.grpc_port}", blocking=blocking, concurrency=concurrency, seconds=seconds)
        else:
            load = run_load("127.0.0.1", self.port, lambda: send_message(self.port, blocking=blocking), concurrency=concurrency, seconds=seconds)
        result = asyncio.run(load)
        if meter is None or before is None:  # the SDK's server keeps its tasks in memory
            return result, None
        self.settle(meter)
        return result, meter.cost(before, meter.read())


def send_message(port: int, *, blocking: bool) -> bytes:
    """One JSON-RPC SendMessage request with a fresh message id (ours deduplicates by id)."""
    params: dict = {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "ping"}]}}
    if not blocking:
        params["configuration"] = {"returnImmediately": True}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
    return request_bytes("127.0.0.1", port, "/a2a", body, {"A2A-Version": "1.0"})


def servers(redis_url: str, which: list[str]) -> list[Server]:
    env = base_env(redis_url, tempfile.mkdtemp(prefix="a2a-bench-"), A2A_AGENT="noop", A2A_EMBEDDED_WORKERS="1")
    sdk_grpc, ours_grpc = free_port(), free_port()
    known = {
        "sdk": Server("a2a-sdk (uvicorn)", ["-m", "bench.sdk_server"], does=SDK_DOES, grpc_port=sdk_grpc, grpc_name=SDK_GRPC),
        "uvicorn": Server(
            "ours (uvicorn)", ["manage.py", "serve", "--server", "uvicorn"], {**env, "A2A_GRPC_PORT": str(ours_grpc)},
            redis_url=redis_url, does=OURS_DOES, grpc_port=ours_grpc, grpc_name="ours, gRPC",
        ),
        # The same gRPC server as under uvicorn: measured once, so off here.
        "daphne": Server("ours (daphne)", ["manage.py", "serve", "--server", "daphne"], {**env, "A2A_GRPC_PORT": "0"}, redis_url=redis_url, does=OURS_DOES),
    }
    return [known[name] for name in which]


@dataclass
class Samples:
    runs: dict[tuple[str, str, int], list[LoadResult]] = field(default_factory=dict)
    costs: dict[tuple[str, str, int], list[Cost]] = field(default_factory=dict)

    def add(self, key: tuple[str, str, int], result: LoadResult, cost: Cost | None = None) -> None:
        self.runs.setdefault(key, []).append(result)
        if cost is not None:
            self.costs.setdefault(key, []).append(cost)

    def redis_cpu_us(self, key: tuple[str, str, int]) -> float:
        return median([c.cpu_us for c in self.costs.get(key, [])])

    def redis_commands(self, key: tuple[str, str, int]) -> float:
        return median([c.commands for c in self.costs.get(key, [])])

    def rps(self, key: tuple[str, str, int]) -> float:
        return median([r.rps for r in self.runs.get(key, [])])

    def latency(self, key: tuple[str, str, int], pct: float) -> float:
        return median([percentile(r.latencies_ms, pct) for r in self.runs.get(key, [])])

    def errors(self, key: tuple[str, str, int]) -> int:
        return sum(r.errors for r in self.runs.get(key, []))


def run(server: RedisServer, *, seconds: float, rounds: int, which: list[str] | None = None, levels: tuple[int, ...] = LEVELS) -> tuple[Table, Samples]:
    log_dir = Path(tempfile.mkdtemp(prefix="a2a-bench-logs-"))
    which = which or ["sdk", "uvicorn", "daphne"]
    started = servers(server.url, which)
    samples, failed, meter = Samples(), [], RedisMeter(server.url)
    try:
        for srv in started:
            if not srv.start(log_dir):
                failed.append(srv)
        live = [s for s in started if s not in failed]
        for _ in range(rounds):
            for srv in live:  # servers take turns, so that noise spreads over all of them
                for binding in srv.bindings:
                    for mode, mode_levels in (("non-blocking", levels), ("blocking", tuple(c for c in BLOCKING_LEVELS if c in levels))):
                        for concurrency in mode_levels:
                            result, cost = srv.measure(meter if srv.redis_url else None, concurrency, seconds, blocking=mode == "blocking", binding=binding)
                            samples.add((srv.row_name(binding), mode, concurrency), result, cost)
    finally:
        meter.close()
        for srv in started:
            srv.stop()
    return table(samples, started, failed, seconds=seconds, rounds=rounds, levels=levels), samples


def table(samples: Samples, started: list[Server], failed: list[Server], *, seconds: float, rounds: int, levels: tuple[int, ...]) -> Table:
    out = Table(
        f"2. Endpoint ingress: SendMessage over JSON-RPC and gRPC, {seconds:g} s per level, median of {rounds} rounds",
        ["server", "mode", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "vs a2a-sdk (requests/s)", "Redis CPU us/task", "Redis commands/task"],
    )
    for mode, mode_levels in (("non-blocking", levels), ("blocking", tuple(c for c in BLOCKING_LEVELS if c in levels))):
        for concurrency in mode_levels:
            for srv, binding in ((s, b) for b in ("JSON-RPC", "gRPC") for s in started if b in s.bindings):
                name, reference = srv.row_name(binding), REFERENCE[binding]
                key = (name, mode, concurrency)
                if key not in samples.runs:
                    continue
                versus = "-" if name == reference else ratio(samples.rps(key), samples.rps((reference, mode, concurrency)))
                cpu, commands = (fmt(samples.redis_cpu_us(key)), fmt(samples.redis_commands(key), 1)) if srv.redis_url else ("no Redis", "no Redis")
                out.add(name, mode, concurrency, fmt(samples.rps(key)), fmt(samples.latency(key, 50), 1), fmt(samples.latency(key, 99), 1), samples.errors(key), versus, cpu, commands)
    for srv in failed:
        out.add(srv.name, "error", "-", "-", "-", "-", "-", "-", "-", f"did not start: {srv.failure}")
        out.errors.append(f"ingress benchmark, {srv.name} did not start: {srv.failure}")
    out.notes.append("goal: non-blocking requests/s at least 1.0x the a2a-sdk's server at each concurrency")
    out.notes.append("gRPC rows: the generated stub's SendMessage from one channel (HTTP/2 streams), each compared with the SDK's own gRPC server (GrpcHandler) in the same run")
    out.notes.extend(f"in the timed window, {srv.name} {srv.does}" for srv in started)
    out.notes.append("each of our levels starts once the worker has finished the previous level's tasks")
    out.notes.append(
        "Redis CPU and commands per task: INFO cpu and INFO commandstats of the side's Redis from the level's start until its last task finished"
        " (create, claim, finish, events, and the idle server's housekeeping), divided by the tasks finished; script calls and the commands inside them both count"
    )
    return out
