"""Each benchmark, run once at a tiny size, so that ``bench/`` cannot rot.

These are real runs (real Redis, real worker and server processes, real HTTP and
WebSocket), checked for what the tables report, never for speed. Every side runs: the
peers (RQ, arq, dramatiq, Celery) and the a2a-sdk's Starlette server are installed by
``make test`` (requirements-test.txt, bench/requirements-nodeps.txt), and a side that
cannot run fails its test, as it is an error row in the benchmark's table.
"""

from __future__ import annotations

import pytest

from bench import __main__ as cli
from bench import coldstart, dashboard, ingress, instructions, storage, throughput
from bench.common import percentile, ratio
from bench.peers import Side, all_sides
from queueapp.config import SETTINGS


# The peers' enqueue calls run in this process, and some of them still use redis-py
# arguments that redis-py 6 deprecates; that is theirs to fix, not a fault of ours.
@pytest.mark.filterwarnings("ignore:Call to '__init__' function with deprecated usage:DeprecationWarning")
def test_worker_benchmark_runs_our_side_and_every_peer(redis_server):
    sides = all_sides()
    table, results = throughput.run(redis_server, sides, tasks=100, rounds=1, processes=1, concurrency=4)

    assert [side.name for side in sides] == ["ours", "rq", "arq", "dramatiq", "celery", "celery-threads"]
    for side in sides:
        assert not results[side.name].error, (side.name, results[side.name].error)
        assert results[side.name].enqueue > 0, side.name
        assert results[side.name].process > 0, side.name
        assert len(results[side.name].worker_cpu_us) == 1, side.name  # the CPU window was taken
    assert not table.errors
    assert [row[0] for row in table.rows] == [side.name for side in sides]
    # Jobs at once, side by side: Celery's prefork row is not equal concurrency, its threads row is.
    assert {row[0]: row[1] for row in table.rows} == {"ours": "4", "rq": "1", "arq": "4", "dramatiq": "4", "celery": "1", "celery-threads": "4"}
    # The side that ran last left every one of its jobs finished in Redis.
    assert sides[-1].done(redis_server.client()) >= 100


@pytest.mark.filterwarnings("ignore:Call to '__init__' function with deprecated usage:DeprecationWarning")
def test_cold_start_benchmark_times_fresh_workers_of_every_side_on_a_backlog(redis_server):
    sides = all_sides()
    table, results = coldstart.run(redis_server, sides, tasks=50, rounds=1, processes=1, concurrency=4)

    assert not table.errors
    for side in sides:
        res = results[side.name]
        assert not res.error and res.tasks == 50, (side.name, res.error)
        assert 0 < res.first_done_ms[0] <= res.drain_s[0] * 1000, side.name
    ours = results["ours"]
    assert 0 < ours.first_claimed_ms[0] <= ours.first_done_ms[0]  # claimed before it can be done
    assert all(not results[side.name].first_claimed_ms for side in sides[1:])  # the peers do not say
    assert [row[0] for row in table.rows] == [side.name for side in sides]
    assert any(note.startswith("goal: process start to first task claimed <= 200 ms") for note in table.notes)


class FailingSide(Side):
    name = "broken"

    def enqueue(self, url: str, count: int) -> float:
        raise ModuleNotFoundError("No module named 'broken'")

    def start_workers(self, url, processes, concurrency, log_dir):
        raise AssertionError("never reached")

    def done(self, client) -> int:
        return 0


def test_a_run_too_short_to_split_still_gets_a_rate():
    # Every job done between two samples: the rate is taken over the interval that holds them.
    assert throughput.steady_rate([(0.0, 0), (0.1, 0), (0.2, 20)], 20) == pytest.approx(200)
    assert throughput.steady_rate([(0.0, 0), (1.0, 10), (2.0, 20)], 100) == pytest.approx(10)


def test_a_side_that_cannot_run_is_an_error_row_and_fails_the_run(redis_server, monkeypatch, capsys):
    sides = [all_sides()[0], FailingSide()]
    table, results = throughput.run(redis_server, sides, tasks=20, rounds=2, processes=1, concurrency=2)

    assert results["broken"].error == "ModuleNotFoundError: No module named 'broken'"
    assert table.rows[1][:3] == ["broken", "2", "error: ModuleNotFoundError: No module named 'broken'"]
    assert table.errors == ["worker benchmark, broken: ModuleNotFoundError: No module named 'broken'"]
    assert results["ours"].process > 0 and len(results["ours"].process_rates) == 2  # the others still ran

    monkeypatch.setattr(cli, "run", lambda args: [table])
    assert cli.main(["worker"]) == 1
    assert "worker benchmark, broken: ModuleNotFoundError" in capsys.readouterr().err


def test_ingress_benchmark_sends_messages_to_ours_and_the_sdk_server_over_json_rpc_and_grpc_and_weighs_our_redis(redis_server):
    table, samples = ingress.run(redis_server, seconds=0.3, rounds=1, which=["sdk", "uvicorn"], levels=(1,))

    for name in ("ours (uvicorn)", "a2a-sdk (uvicorn)", "ours, gRPC", "a2a-sdk, gRPC"):
        for mode in ("non-blocking", "blocking"):
            key = (name, mode, 1)
            assert samples.rps(key) > 0, key
            assert samples.errors(key) == 0, key
    assert len(table.rows) == 8 and "error" not in [row[1] for row in table.rows]
    for name in ("ours (uvicorn)", "ours, gRPC"):
        for mode in ("non-blocking", "blocking"):
            # Every task costs Redis a create, a claim and a finish: several commands and some CPU.
            assert samples.redis_commands((name, mode, 1)) > 3
            assert samples.redis_cpu_us((name, mode, 1)) > 0
    grpc_rows = {row[0]: row for row in table.rows if row[0].endswith("gRPC") and row[1] == "non-blocking"}
    assert grpc_rows["a2a-sdk, gRPC"][7] == "-" and grpc_rows["ours, gRPC"][7].endswith("x")  # compared with the SDK's gRPC server
    sdk_rows = [row for row in table.rows if row[0].startswith("a2a-sdk")]
    assert all(row[-2:] == ["no Redis", "no Redis"] for row in sdk_rows)
    said = " ".join(table.notes)
    assert "ours (uvicorn) accepts each request and queues its task" in said
    assert "a2a-sdk (uvicorn) accepts each request and runs its task in-process" in said


def test_an_ingress_server_that_cannot_start_is_an_error_row_not_a_missing_one(redis_server, monkeypatch):
    broken = ingress.Server("ours (broken)", ["-c", "raise SystemExit('no such server')"])
    monkeypatch.setattr(ingress, "servers", lambda url, which: [broken])

    table, samples = ingress.run(redis_server, seconds=0.3, rounds=1, which=["uvicorn"], levels=(1,))

    assert table.rows == [["ours (broken)", "error", "-", "-", "-", "-", "-", "-", "-", "did not start: no such server"]]
    assert not samples.runs


def test_dashboard_benchmark_sees_every_change_in_a_frame(redis_server):
    table, results = dashboard.run(redis_server, rates=[20], seconds=1.0, clients=2, rounds=1)

    level = results[20]
    assert level.missed == 0
    assert len(level.latencies_ms) == 2 * 20  # every change, seen by both clients
    assert all(latency >= 0 for latency in level.latencies_ms)
    default_fps = float(SETTINGS["A2A_DASHBOARD_MAX_FPS"].default)
    assert max(level.frames_per_s) <= default_fps + 1  # bounded by A2A_DASHBOARD_MAX_FPS
    assert table.rows[0][0] == "20"


def test_storage_benchmark_reads_and_weighs_finished_tasks(redis_server):
    table, results = storage.run(redis_server, [60, 120])

    for size in (60, 120):
        for name in storage.READ_NAMES:
            assert results[size][name] > 0
        assert results[size]["memory per task, after (bytes)"] > 0
        assert results[size]["memory per task, first day (bytes)"] > 0  # the message-id key kept
        assert results[size]["memory per owned task (auth on), after (bytes)"] > 0
    client = redis_server.client()
    owned = 120 // storage.OWNER_SHARE  # the owner's share comes on top of the anonymous tasks
    assert client.zcard("a2a:idx:history:completed") == 120 + owned
    assert client.zcard(f"a2a:idx:owner:{storage.OWNER}:history:completed") == owned
    assert client.hget("a2a:counts", "total_completed") == str(120 + owned)
    assert [row[0] for row in table.rows][: len(storage.READ_NAMES)] == list(storage.READ_NAMES)


def test_instruction_count_benchmark_weighs_each_step_of_a_tasks_life():
    table = instructions.run(rounds=2, load=instructions.Load(batch=3, subscribers=1))
    rows = {row[0]: float(row[1].replace(",", "")) for row in table.rows}
    assert list(rows) == ["create", "claim and finish", "delete", "the whole life"]
    # A script call alone costs Redis some 20,000 instructions: each step is at least that.
    assert all(value > 20_000 for value in rows.values()), rows


@pytest.mark.parametrize(
    ("text", "message"),
    [("ten", "is not a number"), ("0", "must be above zero"), ("", "no sizes given"), ("5x", "is not a number")],
)
def test_storage_sizes_that_make_no_sense_are_refused_clearly(text, message):
    with pytest.raises(ValueError, match=message):
        storage.parse_sizes(text)


def test_storage_sizes_accept_k_and_m_and_sort():
    assert storage.parse_sizes("1m, 10k,100k") == [10_000, 100_000, 1_000_000]


def test_command_line_refuses_unknown_benchmarks_and_bad_numbers(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["workers"])
    assert exit_info.value.code == 2
    assert "unknown benchmark workers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["--rounds", "0"])
    assert "--rounds must be 1 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["worker", "--peers", "dramatiq,celery-prefork"])
    assert "unknown peer celery-prefork" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["worker", "--cold-tasks", "0"])
    assert "--cold-tasks must be 1 or more" in capsys.readouterr().err


def test_command_line_reports_bad_sizes_without_a_traceback(capsys):
    assert cli.main(["storage", "--sizes", "lots"]) == 2
    assert "size 'lots' is not a number" in capsys.readouterr().err


def test_percentiles_and_ratios_read_the_way_the_tables_use_them():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert ratio(300, 100) == "3.00x"
    assert ratio(10, 20, lower_is_better=True) == "2.00x"
    assert ratio(0, 100) == "-"
