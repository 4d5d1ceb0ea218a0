"""Our side's figures, read back from the Markdown tables ``python -m bench --markdown`` writes.

``python -m bench compare`` runs an earlier version's benchmarks beside the current ones.
The earlier version has no other output than these tables, so both sides are read the
same way, from the text of ``Table.render``. Each table has its shape here: which rows
are ours (the peers are not compared), which columns name a row, and whether a row holds
one measure across sizes (storage) instead of one measure per column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

Row = dict[str, str]


@dataclass(frozen=True)
class Shape:
    key_columns: tuple[str, ...]  # the columns that name a row
    row_name: str = ""  # how a row is named in a measure, ``str.format``-ed with the key cells
    ours: Callable[[Row], bool] = lambda row: True
    transposed: bool = False  # one measure per row, a column per size


SHAPES = {
    "Worker throughput": Shape(("queue",), ours=lambda row: row["queue"] == "ours"),
    "Cold start": Shape(("queue",), ours=lambda row: row["queue"] == "ours"),
    "Endpoint ingress": Shape(("server", "mode", "concurrency"), "{0}, {1}, concurrency {2}", ours=lambda row: row["server"].startswith("ours")),
    "Dashboard latency": Shape(("changes/s asked",), "{0} changes/s asked"),
    "Storage scale": Shape(("measure",), "{0}", transposed=True),
}
SETTINGS_COLUMNS = {"jobs at once"}  # what the side was given, not what it did
COMPARISONS = re.compile(r"\bvs\b")  # ratios against a peer or another size: not ours to compare


@dataclass(frozen=True)
class Measure:
    value: float
    better: str | None  # "higher", "lower", or None when neither is better
    digits: int = 0  # decimals the table gave it


class TableError(ValueError):
    """A side's table says it could not run, or cannot be read."""


@dataclass
class Parsed:
    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``1b. Cold start: 2,000 tasks ...`` -> ``Cold start``."""
        return self.title.split(":", 1)[0].split(". ", 1)[-1].strip()


def parse_tables(text: str) -> list[Parsed]:
    """Every table in the text ``Table.render`` made: its title, header and rows (the notes are left out)."""
    tables: list[Parsed] = []
    current: Parsed | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = Parsed(line[4:].strip(), [])
            tables.append(current)
        elif current is not None and line.startswith("|") and not line.startswith("|-"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not current.columns:
                current.columns = cells
            elif len(cells) == len(current.columns):
                current.rows.append(dict(zip(current.columns, cells, strict=True)))
            else:
                raise TableError(f"{current.name}: a row has {len(cells)} cells for {len(current.columns)} columns: {line.strip()}")
    return tables


def number(cell: str) -> float:
    """``12,345`` or ``3.5`` -> a float; ``-`` (not measured) -> NaN."""
    if cell in ("-", ""):
        return math.nan
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        return math.nan


def ours(table: Parsed) -> dict[str, Measure]:
    """Our side's measures in one table, named ``row name: column`` (or just the column when there is one row of ours)."""
    shape = SHAPES.get(table.name) or Shape((table.columns[0],), "{0}")
    measures: dict[str, Measure] = {}
    for row in table.rows:
        if not shape.ours(row):
            continue
        failed = next((cell for cell in row.values() if cell.startswith("error") or cell.startswith("did not start")), None)
        if failed:
            raise TableError(f"{table.name}: {failed}")
        name = shape.row_name.format(*(row[key] for key in shape.key_columns))
        for column in table.columns:
            if column in shape.key_columns or column in SETTINGS_COLUMNS or COMPARISONS.search(column):
                continue
            label = f"{name}, {column}" if shape.transposed else f"{name}: {column}" if name else column
            cell = row[column]
            digits = len(cell) - cell.index(".") - 1 if "." in cell else 0
            measures[label] = Measure(number(cell), better_when(name if shape.transposed else column), digits)
    return measures


def read(text: str) -> dict[str, dict[str, Measure]]:
    """Table name -> our measures in it, for every table in a ``--markdown`` file."""
    return {table.name: ours(table) for table in parse_tables(text)}


def better_when(measure: str) -> str | None:
    """``higher`` for throughput, ``lower`` for latency, CPU, memory, errors; ``None`` when neither is better."""
    if "frames/s" in measure:  # bounded by A2A_DASHBOARD_MAX_FPS on purpose, not a goal either way
        return None
    if "/s" in measure:
        return "higher"
    return "lower"


def verdict(better: str | None, baseline: float, current: float, tolerance: float) -> tuple[str, str]:
    """The ratio current/baseline, and whether current is better, worse or even (within ``tolerance``, a fraction)."""
    if math.isnan(baseline) or math.isnan(current):
        return "-", "-"
    if baseline == current:
        return ("1.00x" if baseline else "-"), "even"
    ratio = f"{current / baseline:.2f}x" if baseline else "-"
    if better is None:
        return ratio, "-"
    if baseline and abs(current / baseline - 1) <= tolerance:
        return ratio, "even"
    return ratio, "better" if (current > baseline) == (better == "higher") else "worse"
