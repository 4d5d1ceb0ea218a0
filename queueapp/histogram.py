"""Wait and run time percentiles from a few counters per minute.

The finish script adds 1 to one bucket per measured duration in the minute's stats hash
(``a2a:stats:{minute}``, fields ``wb:<i>`` and ``rb:<i>``). Bucket ``i`` holds durations
from ``2**(i/4)`` ms up to ``2**((i+1)/4)`` ms: four buckets per doubling, so a percentile
read back is within 10% of the true one, and a day fits in about 100 buckets. A minute
only stores the buckets it used (a steady workload touches a handful), so the cost is two
HINCRBY per finished task and a few small fields per minute.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

PER_DOUBLING = 4
WAIT, RUN = "wb:", "rb:"


def bucket(ms: float) -> int:
    """The bucket of a duration in ms (durations under 1 ms share bucket 0)."""
    return int(math.floor(PER_DOUBLING * math.log2(ms))) if ms > 1 else 0


def field(prefix: str, ms: float) -> str:
    """The stats hash field that counts this duration, or '' when it was not measured (negative)."""
    return f"{prefix}{bucket(ms)}" if ms >= 0 else ""


def counts(row: Mapping[str, str], prefix: str) -> Counter[int]:
    """The bucket counts of one kind in one minute's stats hash."""
    return Counter({int(name[len(prefix) :]): int(n) for name, n in row.items() if name.startswith(prefix)})


def merge(rows: Iterable[Mapping[int, int]]) -> Counter[int]:
    total: Counter[int] = Counter()
    for row in rows:
        total.update(row)
    return total


def percentile(buckets: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0 < q < 1) in ms, read as the middle of its bucket; None without data."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return 0.0 if index == 0 else 2 ** ((index + 0.5) / PER_DOUBLING)
    return None
