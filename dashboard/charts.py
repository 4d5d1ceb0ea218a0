"""Server-side SVG charts of the last hour: no JavaScript, readable with it off.

Three charts: tasks finished per minute (stacked bars), and the wait and run time per
minute as their median (p50) and 95th percentile (p95), read from the per-minute
histograms (queueapp/histogram.py). Each has a labelled time axis: a tick every ten
minutes, in UTC from the server; the page's script rewrites the labels in the browser's
time zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from queueapp import histogram
from queueapp.model import Json, iso_from_ms

TICK_MINUTES = 10
PCTS = (("p50", 0.5), ("p95", 0.95))


@dataclass(frozen=True)
class Frame:
    """The plot area inside a viewBox of ``width`` x ``height``."""

    width: int
    height: int
    left: int = 46
    right: int = 8
    top: int = 10
    bottom: int = 34  # tick labels and the axis title

    @property
    def base(self) -> int:
        return self.height - self.bottom

    def x(self, index: float, count: int) -> float:
        return self.left + (self.width - self.left - self.right) * index / max(count, 1)

    def y(self, value: float, top: float) -> float:
        plot = self.base - self.top
        return self.top + plot - plot * min(value / top, 1.0)

    def slot(self, count: int) -> float:
        return (self.width - self.left - self.right) / max(count, 1)


WIDE, HALF = Frame(900, 190), Frame(450, 190)


def _scale(max_value: float) -> float:
    """A round upper bound (1, 2 or 5 times a power of ten) for the y axis."""
    if max_value <= 0:
        return 1.0
    bounds = (m * 10.0**e for e in range(-3, 15) for m in (1, 2, 5))
    return next((b for b in bounds if b >= max_value), max_value)


def _hm(ms: int) -> str:
    return iso_from_ms(ms)[11:16]


def _axes(frame: Frame, per_minute: list[Json], top: float, unit: str) -> Json:
    """Grid lines, y labels and the time ticks (one every ten minutes) of a chart."""
    count = len(per_minute)
    ticks = [
        {"x": round(frame.x(i, count) + frame.slot(count) / 2, 1), "ms": m["minute_ms"], "label": _hm(m["minute_ms"])}
        for i, m in enumerate(per_minute)
        if (m["minute_ms"] // 60000) % TICK_MINUTES == 0
    ]
    return {
        "width": frame.width, "height": frame.height, "left": frame.left, "right": frame.width - frame.right,
        "base": frame.base, "ceiling": frame.top, "mid": round(frame.y(top / 2, top), 1),
        "top_label": f"{top:g}{unit}", "mid_label": f"{top / 2:g}{unit}", "ticks": ticks,
        "tick_y": frame.base + 13, "title_y": frame.height - 3, "title_x": (frame.left + frame.width - frame.right) // 2,
    }


def throughput(per_minute: list[Json], frame: Frame = WIDE) -> Json:
    """Completed and failed per minute, as stacked bars."""
    count = len(per_minute)
    top = _scale(max((m["completed"] + m["failed"] for m in per_minute), default=0))
    bar_w = max(frame.slot(count) - 1, 1)
    bars = []
    for i, m in enumerate(per_minute):
        x = frame.x(i, count)
        y_done = frame.y(m["completed"], top)
        y_fail = frame.y(m["completed"] + m["failed"], top)
        bars.append(
            {
                "x": round(x, 1), "w": round(bar_w, 1),
                "done_y": round(y_done, 1), "done_h": round(frame.base - y_done, 1),
                "fail_y": round(y_fail, 1), "fail_h": round(y_done - y_fail, 1),
                "label": f"{_hm(m['minute_ms'])} UTC: {m['completed']} completed, {m['failed']} failed",
            }
        )
    return {"bars": bars, "top": top, **_axes(frame, per_minute, top, "")}


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def minute_percentiles(minute: Json) -> Json:
    """p50 and p95 of wait and run time in one minute, in seconds (None where nothing was measured)."""
    return {
        f"{kind}_{name}": _seconds(histogram.percentile(minute[f"{kind}_buckets"], q))
        for kind in ("wait", "run")
        for name, q in PCTS
    }


def _path(frame: Frame, values: list[float | None], top: float) -> Json:
    """A line through the minutes that have a value, broken where a minute has none."""
    count = len(values)
    center = frame.slot(count) / 2
    d, dots, pen_down = [], [], False
    for i, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x, y = round(frame.x(i, count) + center, 1), round(frame.y(value, top), 1)
        d.append(f"{'L' if pen_down else 'M'}{x},{y}")
        dots.append({"x": x, "y": y})
        pen_down = True
    return {"d": " ".join(d), "dots": dots}


def times(per_minute: list[Json], kind: str, frame: Frame = HALF) -> Json:
    """The p50 and p95 of one kind of time (wait or run) per minute, in seconds, as two lines."""
    pcts = [minute_percentiles(m) for m in per_minute]
    series = {name: [p[f"{kind}_{name}"] for p in pcts] for name, _ in PCTS}
    top = _scale(max((v for values in series.values() for v in values if v is not None), default=0))
    return {**{name: _path(frame, values, top) for name, values in series.items()}, "top": top, **_axes(frame, per_minute, top, "s")}


def hour(per_minute: list[Json]) -> Json:
    """The hour in a few figures: tasks finished, per minute, and the hour's percentiles."""
    finished = sum(m["finished"] for m in per_minute)
    figures: Json = {"finished": finished, "per_minute": round(finished / max(len(per_minute), 1), 2)}
    for kind in ("wait", "run"):
        merged = histogram.merge(m[f"{kind}_buckets"] for m in per_minute)
        for name, q in PCTS:
            figures[f"{kind}_{name}"] = _seconds(histogram.percentile(merged, q))
    return figures


def build(per_minute: list[Json]) -> Json:
    rows = [
        {"time": _hm(m["minute_ms"]), "completed": m["completed"], "failed": m["failed"], **minute_percentiles(m)}
        for m in per_minute
        if m["finished"]
    ]
    return {
        "throughput": throughput(per_minute),
        "times": [(times(per_minute, "wait"), "wait", "wait (queued to claimed)"), (times(per_minute, "run"), "run", "run (claimed to finished)")],
        "hour": hour(per_minute), "rows": rows,
    }
