"""Fast unit tests of the pure helpers: charts, time formatting, origin checks, parsing."""

from __future__ import annotations

from dashboard import charts, queries
from dashboard.consumers import same_origin
from dashboard.templatetags.dashboard_tags import duration, relative, reltime, state_badge
from queueapp import histogram, model
from queueapp.states import TaskState


def minute(i: int, completed: int = 0, failed: int = 0, waits: tuple = (), runs: tuple = ()) -> dict:
    """One minute of store.stats(): counts, and histogram buckets of the given durations (ms)."""
    wait_buckets = histogram.merge({histogram.bucket(ms): 1} for ms in waits)
    run_buckets = histogram.merge({histogram.bucket(ms): 1} for ms in runs)
    return {"minute_ms": 60_000 * (29_000_000 + i), "completed": completed, "failed": failed, "canceled": 0, "rejected": 0,
            "finished": completed + failed, "avg_wait_ms": 0, "avg_run_ms": 0,
            "wait_buckets": wait_buckets, "run_buckets": run_buckets}


def test_throughput_bars_stack_failed_on_completed_and_fit_the_axis():
    chart = charts.throughput([minute(0), minute(1, completed=30, failed=7)])
    assert chart["top"] == 50
    empty, full = chart["bars"]
    assert empty["done_h"] == 0 and empty["fail_h"] == 0
    assert full["fail_y"] + full["fail_h"] == full["done_y"]  # failed sits on top of completed
    assert full["done_y"] + full["done_h"] == chart["base"]
    assert "30 completed, 7 failed" in full["label"]


def test_the_time_axis_has_a_labelled_tick_every_ten_minutes():
    hour = [minute(i) for i in range(60)]  # minute 29,000,000 is a multiple of ten
    ticks = charts.throughput(hour)["ticks"]
    assert [t["label"] for t in ticks] == [model.iso_from_ms(hour[i]["minute_ms"])[11:16] for i in range(0, 60, 10)]
    assert all(a["x"] < b["x"] for a, b in zip(ticks, ticks[1:], strict=False))


def test_histogram_percentiles_are_within_ten_percent():
    durations = [100] * 50 + [1000] * 45 + [30_000] * 5
    buckets = histogram.merge({histogram.bucket(ms): 1} for ms in durations)
    assert abs(histogram.percentile(buckets, 0.5) - 100) <= 10
    assert abs(histogram.percentile(buckets, 0.95) - 1000) <= 100
    assert abs(histogram.percentile(buckets, 0.99) - 30_000) <= 3000
    assert histogram.percentile({}, 0.5) is None and histogram.field(histogram.WAIT, -1) == ""
    assert histogram.counts({"wb:3": "2", "rb:9": "1", "completed": "4"}, histogram.WAIT) == {3: 2}


def test_time_lines_show_p50_and_p95_in_seconds_and_break_on_empty_minutes():
    built = charts.build([minute(0, completed=2, waits=(1500, 1500), runs=(250, 8000)), minute(1), minute(2, completed=1, waits=(1500,), runs=(250,))])
    wait = built["times"][0][0]
    assert wait["top"] == 2 and wait["p50"]["d"].count("M") == 2 and len(wait["p50"]["dots"]) == 2  # no line through the empty minute
    row = built["rows"][0]
    assert [r["time"] for r in built["rows"]] == [model.iso_from_ms(60_000 * 29_000_000)[11:16], model.iso_from_ms(60_000 * 29_000_002)[11:16]]
    assert abs(row["wait_p50"] - 1.5) < 0.15 and abs(row["run_p95"] - 8) < 0.8 and abs(row["run_p50"] - 0.25) < 0.025
    assert built["hour"]["finished"] == 3 and built["hour"]["per_minute"] == 1.0 and abs(built["hour"]["run_p95"] - 8) < 0.8


def test_timeline_folds_consecutive_updates_of_one_state():
    def status(state, text, ms):
        return {"kind": "status", "state": TaskState.parse(state), "timestamp": None, "ms": ms, "text": text}

    entries = [status("submitted", "", 1), status("working", "", 2), *(status("working", f"{i}/30", 3 + i) for i in range(30)),
               {"kind": "artifact", "name": "out", "append": False, "ms": 40}, status("completed", "done", 41)]
    rows = queries.fold(entries)
    assert [r.get("kind") for r in rows] == ["status", "status", "artifact", "status"]
    working = rows[1]
    assert working["text"] == "29/30" and len(working["earlier"]) == 30 and working["earlier"][0]["text"] == ""
    assert "earlier" not in rows[0] and "earlier" not in rows[3]


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
    assert "state-failed" in state_badge("TASK_STATE_FAILED") and 'data-tone="bad"' in state_badge("rejected")
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


async def test_browsers_woken_by_one_change_wait_for_one_render():
    import asyncio

    from dashboard.consumers import FrameCache

    cache, calls = FrameCache(), []

    async def render() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return f"<frame {len(calls)}>"

    frames = await asyncio.gather(*(cache.frame(("active",), 3, 10.0, render) for _ in range(5)))
    assert calls == [1] and set(frames) == {"<frame 1>"}

    async def broken() -> str:
        await asyncio.sleep(0.01)
        raise RuntimeError("Redis went away")

    results = await asyncio.gather(cache.frame(("queue",), 1, 10.0, broken), cache.frame(("queue",), 1, 10.0, render), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] == "<frame 2>"  # the waiter rendered for itself
    assert not cache.rendering


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
