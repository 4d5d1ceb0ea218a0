"""Benchmark 1, worker throughput: N no-op tasks through each queue, same processes each side.

Per round and side: flush Redis, enqueue N jobs one after another from one client
(the enqueue rate), then start the worker processes and watch the side's own count
of finished jobs. The processing rate is taken between 10% and 90% done, so that
process start-up and the last stragglers do not count: it is the steady rate. A side
that fails (not installed, workers that die, time out) is an error row in the table.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.common import RedisServer, Table, failure, fmt, median, ratio, stop_all
from bench.peers import Side

POLL_S = 0.005
GOAL_STEADY_RATIO = 1.3  # ours against the fastest peer, steady rate
GOAL_REDIS_CPU_US = 40  # per task, in the window the steady rate is read from


@dataclass
class SideResult:
    name: str
    enqueue_rates: list[float] = field(default_factory=list)
    process_rates: list[float] = field(default_factory=list)
    worker_cpu_us: list[float] = field(default_factory=list)  # per job, workers' processes
    redis_cpu_us: list[float] = field(default_factory=list)  # per job, redis-server
    error: str = ""  # why the side could not run; its row says so

    @property
    def enqueue(self) -> float:
        return median(self.enqueue_rates)

    @property
    def process(self) -> float:
        return median(self.process_rates)


def steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Jobs per second between 10% and 90% done (or over the whole run when it is too short to split)."""
    low = next(((t, d) for t, d in samples if d >= 0.1 * total), None)
    high = next(((t, d) for t, d in samples if d >= 0.9 * total), None)
    if low and high and high[0] > low[0]:
        return (high[1] - low[1]) / (high[0] - low[0])
    # From the last sample before the first job was done: a small run can finish every job
    # between two samples, and the first sample with any done is then also the last.
    first_done = next((i for i, (_, d) in enumerate(samples) if d > 0), 0)
    started, end = samples[max(first_done - 1, 0)], samples[-1]
    return (end[1] - started[1]) / (end[0] - started[0]) if end[0] > started[0] else float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and their children (dramatiq and Celery fork)."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for each in (proc, *proc.children(recursive=True)):
                times = each.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


@dataclass
class Window:
    """CPU (workers, Redis) and jobs done at 10% and at 90% of the jobs (or at the end)."""

    start: tuple[float, float, int] | None = None
    end: tuple[float, float, int] | None = None

    def per_job_us(self) -> tuple[float, float] | None:
        if not (self.start and self.end) or self.end[2] <= self.start[2]:
            return None
        jobs = self.end[2] - self.start[2]
        return (self.end[0] - self.start[0]) / jobs * 1e6, (self.end[1] - self.start[1]) / jobs * 1e6


def follow(side: Side, server: RedisServer, total: int, workers: list, timeout: float, window: Window) -> list[tuple[float, int]]:
    """Sample (time, jobs done) until every job is done; note the CPU at 10% and 90%."""
    client = server.client()
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    pids, redis_pid = [w.pid for w in workers], server.process.pid if server.process else 0
    while True:
        now, done = time.perf_counter(), side.done(client)
        samples.append((now, done))
        if window.start is None and done >= 0.1 * total:
            window.start = (cpu_seconds(pids), cpu_seconds([redis_pid]), done)
        elif window.end is None and done >= 0.9 * total:
            window.end = (cpu_seconds(pids), cpu_seconds([redis_pid]), done)
        if done >= total:
            if window.end is None:  # so fast that 10% to 90% fell between two samples
                window.end = (cpu_seconds(pids), cpu_seconds([redis_pid]), done)
            return samples
        if time.monotonic() > deadline or all(w.poll() is not None for w in workers):
            raise RuntimeError(f"{side.name}: {done} of {total} jobs done when its workers stopped or time ran out")
        time.sleep(POLL_S)


def run_round(side: Side, server: RedisServer, tasks: int, processes: int, concurrency: int, log_dir: Path, result: SideResult) -> None:
    client = server.client()
    client.flushall()
    seconds = side.enqueue(server.url, tasks)
    client.set("bench:enqueued", tasks)
    workers = side.start_workers(server.url, processes, concurrency, log_dir)
    window = Window()
    try:
        samples = follow(side, server, tasks, workers, timeout=max(60.0, tasks / 20), window=window)
    finally:
        stop_all(workers)
    result.enqueue_rates.append(tasks / seconds)
    result.process_rates.append(steady_rate(samples, tasks))
    cpu = window.per_job_us()
    if cpu:
        result.worker_cpu_us.append(cpu[0])
        result.redis_cpu_us.append(cpu[1])


def take_turns(sides: list[Side], rounds: int, results: dict, run_round: Callable[[Side, Any], None]) -> None:
    """Each round runs every side in turn, so that noise spreads over all of them; a side that fails stops there."""
    for _ in range(rounds):
        for side in sides:
            result = results[side.name]
            if result.error:
                continue
            try:
                run_round(side, result)
            except Exception as exc:  # a side that fails is an error row, never a missing one
                result.error = failure(exc)


def run(server: RedisServer, sides: list[Side], *, tasks: int, rounds: int, processes: int, concurrency: int) -> tuple[Table, dict[str, SideResult]]:
    log_dir = Path(tempfile.mkdtemp(prefix="a2a-bench-logs-"))
    results = {side.name: SideResult(side.name) for side in sides}
    take_turns(sides, rounds, results, lambda side, result: run_round(side, server, tasks, processes, concurrency, log_dir, result))
    return table(results, sides, tasks=tasks, rounds=rounds, processes=processes, concurrency=concurrency), results


def table(results: dict[str, SideResult], sides: list[Side], *, tasks: int, rounds: int, processes: int, concurrency: int) -> Table:
    ours = results["ours"]
    out = Table(
        f"1. Worker throughput: {tasks:,} no-op tasks, {processes} worker processes a side, median of {rounds} rounds",
        ["queue", "jobs at once", "enqueued/s", "processed/s", "ours vs it: enqueue", "ours vs it: processing", "worker CPU us/task", "Redis CPU us/task"],
    )
    for side in sides:
        res = results[side.name]
        if res.error:
            out.add(side.name, side.at_once(processes, concurrency), f"error: {res.error}", "-", "-", "-", "-", "-")
            out.errors.append(f"worker benchmark, {side.name}: {res.error}")
            continue
        out.add(
            side.name, side.at_once(processes, concurrency), fmt(res.enqueue), fmt(res.process), ratio(ours.enqueue, res.enqueue), ratio(ours.process, res.process),
            fmt(median(res.worker_cpu_us)), fmt(median(res.redis_cpu_us)),
        )
    peers = [results[s.name] for s in sides if s.name != "ours" and not results[s.name].error]
    if peers:
        fastest = max(peers, key=lambda r: r.process if r.process == r.process else 0)
        out.notes.append(f"goal: processing >= {GOAL_STEADY_RATIO}x the fastest peer ({fastest.name}), a margin that survives a noisy machine: {ratio(ours.process, fastest.process)}")
    if ours.redis_cpu_us:
        out.notes.append(f"goal: Redis CPU per task <= {GOAL_REDIS_CPU_US} us, with the history, indexes, events, stats and notices kept: {fmt(median(ours.redis_cpu_us))} us")
    for name in ("celery", "celery-threads"):
        if name in results:
            out.notes.append(f"goal: processing >= 3x Celery ({name}): {ratio(ours.process, results[name].process)}")
    out.notes.append("jobs at once: what the side's worker processes run at the same time; RQ and Celery's prefork pool run one job per process")
    out.notes.append("enqueue: one client, one job after another; processing: steady rate between 10% and 90% of the jobs done")
    out.notes.append("CPU per task: user + system time of the worker processes (and their children) and of redis-server over the same window; steadier than rates on a busy machine")
    out.notes.extend(side.setup for side in sides)
    return out
