"""Benchmark 1b, cold start: a backlog queued, then fresh worker processes started.

Per round and side: flush Redis, enqueue N no-op jobs (2,000 by default), start the
worker processes and poll the side's own bookkeeping until every job is done, the clock
running from just before the first process is started. Reported: process start to the
first job claimed (ours: its id left the queue list; the peers do not say, so theirs is
not shown) and to the first job done, and the cold drain, N over the time until the
last job is done. Start-up is the whole point here, so nothing is left out of the window.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import RedisServer, Table, fmt, median, ratio, stop_all
from bench.peers import Side
from bench.throughput import POLL_S, take_turns

GOAL_FIRST_CLAIM_MS = 200


@dataclass
class ColdResult:
    name: str
    first_claimed_ms: list[float] = field(default_factory=list)
    first_done_ms: list[float] = field(default_factory=list)
    drain_s: list[float] = field(default_factory=list)
    tasks: int = 0
    error: str = ""

    @property
    def rate(self) -> float:
        return self.tasks / median(self.drain_s) if self.drain_s else float("nan")


def run_round(side: Side, server: RedisServer, tasks: int, processes: int, concurrency: int, log_dir: Path, result: ColdResult) -> None:
    client = server.client()
    client.flushall()
    side.enqueue(server.url, tasks)
    client.set("bench:enqueued", tasks)
    started = time.perf_counter()
    workers = side.start_workers(server.url, processes, concurrency, log_dir)
    first_claimed = first_done = None
    deadline = time.monotonic() + max(60.0, tasks / 20)
    try:
        while (done := side.done(client)) < tasks:
            now = time.perf_counter()
            if first_claimed is None and (side.claimed(client) or 0) > 0:
                first_claimed = now
            if first_done is None and done > 0:
                first_done = now
            if time.monotonic() > deadline or all(w.poll() is not None for w in workers):
                raise RuntimeError(f"{side.name}: {done} of {tasks} jobs done when its workers stopped or time ran out")
            time.sleep(POLL_S)
        finished = time.perf_counter()
    finally:
        stop_all(workers)
    result.tasks = tasks
    result.drain_s.append(finished - started)
    result.first_done_ms.append(((first_done or finished) - started) * 1000)
    if side.claimed(client) is not None:
        result.first_claimed_ms.append(((first_claimed or first_done or finished) - started) * 1000)


def run(server: RedisServer, sides: list[Side], *, tasks: int, rounds: int, processes: int, concurrency: int) -> tuple[Table, dict[str, ColdResult]]:
    log_dir = Path(tempfile.mkdtemp(prefix="a2a-bench-logs-"))
    results = {side.name: ColdResult(side.name) for side in sides}
    take_turns(sides, rounds, results, lambda side, result: run_round(side, server, tasks, processes, concurrency, log_dir, result))
    return table(results, sides, tasks=tasks, rounds=rounds, processes=processes, concurrency=concurrency), results


def table(results: dict[str, ColdResult], sides: list[Side], *, tasks: int, rounds: int, processes: int, concurrency: int) -> Table:
    ours = results["ours"]
    out = Table(
        f"1b. Cold start: {tasks:,} no-op tasks queued, then {processes} fresh worker processes a side, median of {rounds} rounds",
        ["queue", "jobs at once", "start to first claimed ms", "start to first done ms", "all done s", "cold drain jobs/s", "ours vs it: cold drain"],
    )
    for side in sides:
        res = results[side.name]
        at_once = side.at_once(processes, concurrency)
        if res.error:
            out.add(side.name, at_once, f"error: {res.error}", "-", "-", "-", "-")
            out.errors.append(f"cold start benchmark, {side.name}: {res.error}")
            continue
        out.add(
            side.name, at_once, fmt(median(res.first_claimed_ms)), fmt(median(res.first_done_ms)), fmt(median(res.drain_s), 2), fmt(res.rate), ratio(ours.rate, res.rate),
        )
    out.notes.append(f"goal: process start to first task claimed <= {GOAL_FIRST_CLAIM_MS} ms: {fmt(median(ours.first_claimed_ms))} ms")
    if "dramatiq" in results and not results["dramatiq"].error:
        out.notes.append(f"goal: cold drain >= 1.0x dramatiq: {ratio(ours.rate, results['dramatiq'].rate)}")
    out.notes.append("the clock runs from just before the first worker process is started (interpreter start-up, imports and connecting all count) to the last job done")
    out.notes.append("first claimed: ours only, where a claim takes the id off the queue list; the peers' first job done is the nearest they show")
    return out
