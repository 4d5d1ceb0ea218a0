"""Server-side SVG charts of the last hour: no JavaScript, readable with it off."""

from __future__ import annotations

from queueapp.model import Json, iso_from_ms

WIDTH, HEIGHT = 600, 140
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 40, 18, 8


def _scale(max_value: float) -> float:
    """A round upper bound (1, 2 or 5 times a power of ten) for the y axis."""
    if max_value <= 0:
        return 1.0
    bounds = (m * 10.0**e for e in range(-3, 15) for m in (1, 2, 5))
    return next((b for b in bounds if b >= max_value), max_value)


def _x(index: int, count: int) -> float:
    return PAD_LEFT + (WIDTH - PAD_LEFT) * index / max(count, 1)


def _y(value: float, top: float) -> float:
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    return PAD_TOP + plot - plot * min(value / top, 1.0)


def throughput(per_minute: list[Json]) -> Json:
    """Completed and failed per minute, as stacked bars."""
    count = len(per_minute)
    top = _scale(max((m["completed"] + m["failed"] for m in per_minute), default=0))
    bar_w = max((WIDTH - PAD_LEFT) / max(count, 1) - 1, 1)
    bars = []
    for i, m in enumerate(per_minute):
        x = _x(i, count)
        y_done = _y(m["completed"], top)
        y_fail = _y(m["completed"] + m["failed"], top)
        bars.append(
            {
                "x": round(x, 1), "w": round(bar_w, 1),
                "done_y": round(y_done, 1), "done_h": round(HEIGHT - PAD_BOTTOM - y_done, 1),
                "fail_y": round(y_fail, 1), "fail_h": round(y_done - y_fail, 1),
                "label": f"{iso_from_ms(m['minute_ms'])[11:16]} UTC: {m['completed']} completed, {m['failed']} failed",
            }
        )
    return {"bars": bars, "top": top, **_frame(top)}


def times(per_minute: list[Json]) -> Json:
    """Average wait and run time per minute (seconds), as two lines."""
    count = len(per_minute)
    top = _scale(max((max(m["avg_wait_ms"], m["avg_run_ms"]) / 1000 for m in per_minute), default=0))
    center = (WIDTH - PAD_LEFT) / max(count, 1) / 2

    def points(key: str) -> str:
        return " ".join(f"{_x(i, count) + center:.1f},{_y(m[key] / 1000, top):.1f}" for i, m in enumerate(per_minute))

    return {"wait_points": points("avg_wait_ms"), "run_points": points("avg_run_ms"), "top": top, **_frame(top)}


def _frame(top: float) -> Json:
    return {
        "width": WIDTH, "height": HEIGHT, "left": PAD_LEFT, "base": HEIGHT - PAD_BOTTOM, "ceiling": PAD_TOP,
        "mid": round(_y(top / 2, top), 1), "top_label": f"{top:g}", "mid_label": f"{top / 2:g}",
    }


def build(per_minute: list[Json]) -> Json:
    rows = [
        {
            "time": iso_from_ms(m["minute_ms"])[11:16],
            "completed": m["completed"], "failed": m["failed"],
            "wait_s": round(m["avg_wait_ms"] / 1000, 2), "run_s": round(m["avg_run_ms"] / 1000, 2),
        }
        for m in per_minute
        if m["completed"] or m["failed"]
    ]
    return {"throughput": throughput(per_minute), "times": times(per_minute), "rows": rows}
