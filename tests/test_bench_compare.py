"""``python -m bench compare``, run once at the smallest size, and how it reads the tables back.

The run compares HEAD with this tree: a real git worktree, both sides' real ``python -m
bench storage``, checked for what the comparison reports, never for speed.
"""

from __future__ import annotations

import math
import subprocess

import pytest

from bench import __main__ as cli
from bench.common import ROOT, Table
from bench.compare import CompareError, Tree, check_imports
from bench.measures import TableError, read, verdict


def in_git_checkout() -> bool:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0


needs_git = pytest.mark.skipif(not in_git_checkout(), reason="compare checks out a git ref: this tree is not a git checkout")


@needs_git
def test_compare_runs_the_baseline_and_the_current_tree_and_gives_each_measure_a_ratio(capsys):
    assert cli.main(["compare", "--baseline", "HEAD", "storage", "--rounds", "1", "--", "--sizes", "50"]) == 0

    out = capsys.readouterr().out
    assert "### storage: ours at baseline " in out
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| "))}
    assert rows["measure"] == ["baseline", "current", "current/baseline", "verdict"]
    baseline, current, ratio, said = rows["stats, 50 tasks"]
    assert float(baseline) > 0 and float(current) > 0
    assert ratio.endswith("x") and said in ("better", "worse", "even")
    assert rows["history hash of one task (bytes), 50 tasks"][2:] == ["1.00x", "even"]  # the same code stores the same hash
    assert "50 tasks vs" not in out  # the table's ratio between sizes is not a measure


@needs_git
def test_compare_refuses_a_baseline_that_is_not_a_commit(capsys):
    assert cli.main(["compare", "--baseline", "no-such-ref-anywhere", "storage"]) == 2
    assert "baseline 'no-such-ref-anywhere' is not a commit" in capsys.readouterr().err


def test_a_baseline_that_cannot_import_its_benchmarks_fails_with_the_reason(tmp_path):
    with pytest.raises(CompareError, match=r"baseline side \(abc1234\) cannot import its benchmarks .*No module named 'bench'"):
        check_imports(Tree("baseline", tmp_path, "abc1234"), ["storage"])


def test_compare_options_that_make_no_sense_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["compare", "storage"])
    assert "--baseline" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["compare", "--baseline", "HEAD", "workers"])
    assert "unknown benchmark workers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["compare", "--baseline", "HEAD", "storage", "--", "--rounds", "5"])
    assert "compare sets it on each side itself" in capsys.readouterr().err


def test_only_our_rows_are_read_back_each_measure_with_its_direction():
    worker = Table("1. Worker throughput: 100 no-op tasks", ["queue", "jobs at once", "enqueued/s", "processed/s", "ours vs it: processing", "worker CPU us/task"])
    worker.add("ours", 4, "1,200", "3,000", "1.00x", "150")
    worker.add("rq", 1, "900", "800", "3.75x", "400")
    dashboard = Table("3. Dashboard latency: change in Redis to WebSocket frame", ["changes/s asked", "changes/s made", "p99 ms", "frames/s per client (median)"])
    dashboard.add(100, "101", "130.5", "10.0")

    tables = read(worker.render() + "\n" + dashboard.render())

    assert {name: (m.value, m.better) for name, m in tables["Worker throughput"].items()} == {
        "enqueued/s": (1200, "higher"), "processed/s": (3000, "higher"), "worker CPU us/task": (150, "lower"),
    }
    latency = tables["Dashboard latency"]
    assert latency["100 changes/s asked: p99 ms"].better == "lower"  # the row's name says /s, the measure does not
    assert latency["100 changes/s asked: changes/s made"].better == "higher"
    assert latency["100 changes/s asked: frames/s per client (median)"].better is None  # a bound, not a goal


def test_an_error_row_of_ours_is_a_failure_not_a_missing_measure():
    table = Table("1. Worker throughput: 100 no-op tasks", ["queue", "jobs at once", "enqueued/s", "processed/s"])
    table.add("ours", 4, "error: RuntimeError: ours: 10 of 100 jobs done", "-")
    with pytest.raises(TableError, match="Worker throughput: error: RuntimeError"):
        read(table.render())


def test_verdicts_follow_the_direction_and_leave_noise_even():
    assert verdict("higher", 100, 110, 0.05) == ("1.10x", "better")
    assert verdict("lower", 100, 110, 0.05) == ("1.10x", "worse")
    assert verdict("lower", 100, 103, 0.05) == ("1.03x", "even")
    assert verdict("lower", 0, 2, 0.05) == ("-", "worse")  # errors where there were none
    assert verdict("lower", 0, 0, 0.05) == ("-", "even")
    assert verdict(None, 9, 10, 0.05) == ("1.11x", "-")
    assert verdict("higher", math.nan, 10, 0.05) == ("-", "-")
