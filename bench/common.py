"""What every benchmark shares: a private Redis, rounds and medians, tables and ratios."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import ROOT, RedisServer, base_env, free_port

__all__ = ["ROOT", "RedisServer", "Table", "base_env", "child", "failure", "free_port", "median", "percentile", "private_redis", "ratio", "stop_all"]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (``pct`` from 0 to 100) of the values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def ratio(ours: float, theirs: float, *, lower_is_better: bool = False) -> str:
    """How many times better we are: above 1.0x means we lead."""
    if not ours or not theirs or ours != ours or theirs != theirs:
        return "-"
    return f"{(theirs / ours if lower_is_better else ours / theirs):.2f}x"


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN: not measured
        return "-"
    return f"{value:,.{digits}f}"


def failure(exc: BaseException) -> str:
    """An exception in one line, for a table cell."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class Table:
    """A plain-text (and Markdown) table: the form every benchmark reports in."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # sides that could not run: their rows say so, and the run fails

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c) for i, c in enumerate(self.columns)]
        line = "| " + " | ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)) + " |"
        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in self.rows]
        notes = [f"- {n}" for n in self.notes]
        return "\n".join([f"### {self.title}", "", line, rule, *body, *([""] + notes if notes else []), ""])


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the benchmark's own on a free port, removed afterwards."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def child(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start a Python child process in the project root; its output goes to ``log`` or nowhere."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env or dict(os.environ), stdout=out, stderr=subprocess.STDOUT)


def stop_all(processes: Sequence[subprocess.Popen], timeout: float = 15) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


