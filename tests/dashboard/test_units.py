"""Fast unit tests of the pure helpers: charts, time formatting, origin checks, parsing."""

from __future__ import annotations

from dashboard import charts, queries
from dashboard.consumers import same_origin
from dashboard.templatetags.dashboard_tags import duration, relative, reltime, state_badge
from queueapp import model
from queueapp.states import TaskState


def minute(i: int, completed: int = 0, failed: int = 0, wait: float = 0, run: float = 0) -> dict:
    return {"minute_ms": 60_000 * (29_000_000 + i), "completed": completed, "failed": failed, "canceled": 0, "avg_wait_ms": wait, "avg_run_ms": run}


def test_throughput_bars_stack_failed_on_completed_and_fit_the_axis():
    chart = charts.throughput([minute(0), minute(1, completed=30, failed=7)])
    assert chart["top"] == 50
    empty, full = chart["bars"]
    assert empty["done_h"] == 0 and empty["fail_h"] == 0
    assert full["fail_y"] + full["fail_h"] == full["done_y"]  # failed sits on top of completed
    assert full["done_y"] + full["done_h"] == chart["base"]
    assert "30 completed, 7 failed" in full["label"]


def test_time_lines_are_in_seconds_and_the_table_keeps_only_busy_minutes():
    built = charts.build([minute(0), minute(1, completed=1, wait=1500, run=250)])
    assert built["times"]["top"] == 2 and len(built["times"]["wait_points"].split()) == 2
    assert built["rows"] == [{"time": built["rows"][0]["time"], "completed": 1, "failed": 0, "wait_s": 1.5, "run_s": 0.25}]


def test_relative_times_and_durations():
    now = 1_000_000_000
    assert relative(now - 2_000, now) == "just now"
    assert relative(now - 90_000, now) == "1 min ago"
    assert relative(now + 7_200_000, now) == "in 2 h"
    assert duration(1500) == "1.5 s" and duration(None) == "–" and duration(65_000) == "1 min 5 s"
    html = str(reltime(model.now_ms()))
    assert html.startswith("<time datetime=") and 'title="' in html and "UTC" in html
    assert reltime(None) == "–" and reltime("not a time") == "–"


def test_state_badges_spell_the_state_out():
    assert ">input required<" in state_badge(TaskState.INPUT_REQUIRED)
    assert "state-failed" in state_badge("TASK_STATE_FAILED")
    assert "state-unknown" in state_badge("<b>nonsense</b>")


def test_same_origin_needs_an_origin_naming_the_host():
    def scope(origin: str | None, host: str = "dash.example:8080") -> dict:
        headers = [(b"host", host.encode())]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        return {"headers": headers}

    assert same_origin(scope("https://dash.example:8080"))
    assert not same_origin(scope("https://evil.example"))
    assert not same_origin(scope("https://dash.example"))  # another port is another origin
    assert not same_origin(scope(None))


def test_parsing_query_parameters_never_fails():
    assert queries.parse_offset("-5") == 0 and queries.parse_offset("x") == 0 and queries.parse_offset("20") == 20
    assert queries.parse_state("failed") is TaskState.FAILED and queries.parse_state("TASK_STATE_CANCELED") is TaskState.CANCELED
    assert queries.parse_state("working") is None and queries.parse_state("bogus") is None


def test_parts_are_classified_and_unsafe_links_are_not_links():
    task = {"id": "t", "artifacts": [{"parts": [{"raw": "aGVsbG8=", "filename": "h.txt"}]}], "history": []}
    assert queries.raw_part(task, "a0.0") == (b"hello", task["artifacts"][0]["parts"][0])
    assert queries.raw_part(task, "a1.0") is None and queries.raw_part(task, "zz") is None and queries.raw_part(task, "m0.0") is None
    assert queries.part_view({"url": "data:text/html,x"}, "t", "a0.0")["safe"] is False
    assert queries.part_view({"data": {"b": 1, "a": [1]}}, "t", "a0.0")["json"].startswith('{\n  "a"')


def test_frame_cache_shares_a_frame_only_for_the_same_view_generation_and_while_fresh():
    from dashboard.consumers import REFRESH_S, FrameCache

    cache = FrameCache()
    cache.put(("overview",), 7, 100.0, "<frame>")
    assert cache.get(("overview",), 7, 101.0) == "<frame>"
    assert cache.get(("overview",), 8, 101.0) is None  # a change came in since
    assert cache.get(("queue",), 7, 101.0) is None
    assert cache.get(("overview",), 7, 100.0 + REFRESH_S) is None  # too old: heartbeats and clocks moved


def test_403_and_500_pages_render_in_the_dashboard_layout(rf, db):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied
    from django.views import defaults

    request = rf.get("/dashboard/secret/")
    request.user = AnonymousUser()
    denied = defaults.permission_denied(request, PermissionDenied("internal detail"))
    crashed = defaults.server_error(request)
    for response, status, heading in ((denied, 403, "Not allowed"), (crashed, 500, "Something went wrong")):
        text = response.content.decode()
        assert response.status_code == status and heading in text and "dashboard/dashboard.css" in text and 'aria-label="Dashboard"' in text
    assert "internal detail" not in denied.content.decode()
