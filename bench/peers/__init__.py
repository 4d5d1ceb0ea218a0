"""The two sides of the worker benchmark: ours, and each peer queue on the same Redis.

A side knows how to enqueue N no-op jobs from one client, how to start its worker
processes, and how many jobs it has finished (read from its own bookkeeping in Redis,
so that counting costs the workers nothing).
"""

from __future__ import annotations

import abc
import importlib.util
import subprocess
from pathlib import Path

import redis


class Side(abc.ABC):
    name: str
    requires: str = ""  # the module a peer needs; our side needs nothing extra
    setup: str = ""  # how it is configured, for the table's notes

    def available(self) -> bool:
        return not self.requires or importlib.util.find_spec(self.requires) is not None

    @abc.abstractmethod
    def enqueue(self, url: str, count: int) -> float:
        """Enqueue ``count`` no-op jobs one after another from one client; return the seconds it took."""

    @abc.abstractmethod
    def start_workers(self, url: str, processes: int, concurrency: int, log_dir: Path) -> list[subprocess.Popen]:
        """Start the worker processes (they run until terminated)."""

    @abc.abstractmethod
    def done(self, client: redis.Redis) -> int:
        """How many jobs have finished, read from Redis."""


def all_sides() -> list[Side]:
    from bench.peers.arq_side import ArqSide
    from bench.peers.celery_side import CelerySide
    from bench.peers.dramatiq_side import DramatiqSide
    from bench.peers.ours import OurSide
    from bench.peers.rq_side import RqSide

    return [OurSide(), RqSide(), ArqSide(), DramatiqSide(), CelerySide()]
