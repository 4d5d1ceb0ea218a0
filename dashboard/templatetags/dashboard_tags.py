"""Template helpers: relative times with the absolute time on hover or beside them, durations, badges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils.html import format_html

from queueapp import model
from queueapp.states import TaskState

register = template.Library()


def _to_ms(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def relative(ms: int, now_ms: int) -> str:
    seconds = (now_ms - ms) / 1000
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return "just now"


@register.filter
def reltime(value: Any) -> str:
    """``<time>`` showing "3 min ago", with the absolute UTC time as its title.

    The page's script refreshes the relative text from ``datetime``; without
    JavaScript the server's text stays, which is right as of the page load.
    """
    ms = _to_ms(value)
    if ms is None:
        return "–"
    iso = model.iso_from_ms(ms)
    absolute = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, absolute, relative(ms, model.now_ms()))


@register.filter
def when(value: Any) -> str:
    """:func:`reltime` with the absolute time beside it, as ISO 8601.

    The server writes it in UTC (``Z``); the page's script rewrites it in the browser's
    time zone with its offset (``data-local``), so without JavaScript it is still exact.
    """
    ms = _to_ms(value)
    if ms is None:
        return "–"
    iso = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return format_html('{} <span class="abs" data-local="{}">{}</span>', reltime(ms), ms, iso)


@register.filter
def duration(ms: Any) -> str:
    if ms in (None, ""):
        return "–"
    seconds = float(ms) / 1000
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


@register.filter
def seconds(value: Any) -> str:
    """A duration given in seconds (a chart's figure); '–' when there is none."""
    return "–" if value in (None, "") else duration(float(value) * 1000)


@register.filter
def state_badge(state: Any) -> str:
    """A state as a labelled badge; the colour is never the only signal."""
    try:
        parsed = state if isinstance(state, TaskState) else TaskState.parse(str(state))
    except ValueError:
        parsed = TaskState.UNKNOWN
    return format_html('<span class="badge state-{}" data-tone="{}">{}</span>', parsed.value, parsed.tone, parsed.label)


@register.filter
def short_id(value: Any) -> str:
    return model.short_id(str(value or ""))


@register.filter
def filesize(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
