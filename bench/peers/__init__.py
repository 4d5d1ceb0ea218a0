"""The two sides of the worker benchmark: ours, and each peer queue on the same Redis.

A side knows how to enqueue N no-op jobs from one client, how to start its worker
processes, how many jobs it runs at once with them, and how many jobs it has finished
(read from its own bookkeeping in Redis, so that counting costs the workers nothing).
A peer that is not installed fails when it enqueues, and its row in the table says so.
"""

from __future__ import annotations

import abc
import subprocess
from pathlib import Path

import redis


class Side(abc.ABC):
    name: str
    setup: str = ""  # how it is configured, for the table's notes

    def at_once(self, processes: int, concurrency: int) -> int:
        """How many jobs its worker processes run at the same time."""
        return processes * concurrency

    @abc.abstractmethod
    def enqueue(self, url: str, count: int) -> float:
        """Enqueue ``count`` no-op jobs one after another from one client; return the seconds it took."""

    @abc.abstractmethod
    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        """Start the worker processes (they run until terminated)."""

    @abc.abstractmethod
    def done(self, client: redis.Redis) -> int:
        """How many jobs have finished, read from Redis."""

    def claimed(self, client: redis.Redis) -> int | None:
        """How many jobs a worker has taken (running or finished), where the side's bookkeeping tells; else None."""
        return None


def all_sides() -> list[Side]:
    from bench.peers.arq_side import ArqSide
    from bench.peers.celery_side import CelerySide, CeleryThreadsSide
    from bench.peers.dramatiq_side import DramatiqSide
    from bench.peers.ours import OurSide
    from bench.peers.rq_side import RqSide

    return [OurSide(), RqSide(), ArqSide(), DramatiqSide(), CelerySide(), CeleryThreadsSide()]
