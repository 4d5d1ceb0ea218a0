"""What the store's reads return, besides task records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from queueapp.model import Json, TaskRecord


@dataclass
class Claim:
    """A task a worker holds: only the holder of ``token`` may write to it."""

    record: TaskRecord
    token: str
    worker_id: str


@dataclass
class Page:
    items: list[Any]
    next_cursor: str = ""
    total: int = 0


@dataclass
class Stats:
    queue_length: int
    active: int
    by_state: dict[str, int]
    totals: dict[str, int]
    per_minute: list[Json] = field(default_factory=list)
    workers: list[Json] = field(default_factory=list)
    paused: bool = False
