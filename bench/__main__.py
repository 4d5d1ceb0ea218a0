"""``python -m bench``: run the benchmarks and print their tables.

    python -m bench                      every benchmark at its default size
    python -m bench worker storage       only those
    python -m bench --quick              small sizes, one round (a quick look, not figures to quote)
    python -m bench storage --sizes 10k,100k,1m
    python -m bench --markdown out.md    also write the tables to a file
    python -m bench compare --baseline REF [BENCHMARK ...]
                                         ours at an earlier git ref beside the current tree (bench/compare.py)
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import redis

from bench.common import Table, private_redis

BENCHMARKS = ("worker", "ingress", "dashboard", "storage")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Side-by-side benchmarks of the A2A Redis queue and its peers.",
        epilog="python -m bench compare --baseline REF [BENCHMARK ...] compares our figures with an earlier version's (compare --help).",
    )
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes and one round")
    parser.add_argument("--rounds", type=int, help="rounds per measurement; the median is reported (default 3, quick 1)")
    parser.add_argument("--tasks", type=int, help="worker: tasks per round (default 10000, quick 1000)")
    parser.add_argument("--cold-tasks", type=int, help="worker: tasks queued before the cold start (default 2000, quick 500)")
    parser.add_argument("--processes", type=int, default=2, help="worker: worker processes on each side (default 2)")
    parser.add_argument("--concurrency", type=int, default=10, help="worker: tasks at once per process where the queue allows it (default 10)")
    parser.add_argument("--peers", default="rq,arq,dramatiq,celery,celery-threads", help="worker: peers to run, comma-separated, any of rq,arq,dramatiq,celery (prefork),celery-threads (default all)")
    parser.add_argument("--seconds", type=float, help="ingress and dashboard: seconds per level (default 5, quick 1)")
    parser.add_argument("--servers", default="sdk,uvicorn,daphne", help="ingress: servers to compare (default sdk,uvicorn,daphne)")
    parser.add_argument("--rates", default="10,100,1000", help="dashboard: changes per second (default 10,100,1000)")
    parser.add_argument("--clients", type=int, default=5, help="dashboard: WebSocket clients (default 5)")
    parser.add_argument("--fps", type=float, help="dashboard: A2A_DASHBOARD_MAX_FPS for the server (default: its own default)")
    parser.add_argument("--sizes", help="storage: finished tasks, ascending (default 10k,100k; quick 1k,5k; 1m takes minutes)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: expected any of {', '.join(BENCHMARKS)}")
    for name in ("rounds", "tasks", "cold_tasks", "processes", "concurrency", "clients"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more, not {value}")
    from bench.peers import all_sides

    peers = {side.name for side in all_sides()} - {"ours"}
    strange = [name for name in filter(None, args.peers.split(",")) if name not in peers]
    if strange:
        parser.error(f"unknown peer {', '.join(strange)}: expected any of {', '.join(sorted(peers))}")
    if args.fps is not None and not 0.2 <= args.fps <= 60:
        parser.error(f"--fps must be from 0.2 to 60 (what A2A_DASHBOARD_MAX_FPS accepts), not {args.fps:g}")
    if args.seconds is not None and args.seconds <= 0:
        parser.error(f"--seconds must be above zero, not {args.seconds}")
    return args


def machine(url: str) -> str:
    import os

    version = redis.Redis.from_url(url).info("server")["redis_version"]
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, Redis {version}"


def run(args: argparse.Namespace) -> list[Table]:
    from bench import coldstart, dashboard, ingress, storage, throughput
    from bench.peers import all_sides
    from queueapp.store.pipelining import install_fast_packer

    install_fast_packer()  # the in-process writers and readers pack commands as serve and runworker do
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    seconds = args.seconds or (1.0 if quick else 5.0)
    chosen = args.benchmarks or list(BENCHMARKS)
    tables: list[Table] = []
    with private_redis() as server:
        print(f"Machine: {machine(server.url)}\n", flush=True)
        if "worker" in chosen:
            wanted = {"ours", *filter(None, args.peers.split(","))}
            sides = [s for s in all_sides() if s.name in wanted]
            table, _ = throughput.run(server, sides, tasks=args.tasks or (1000 if quick else 10000), rounds=rounds, processes=args.processes, concurrency=args.concurrency)
            tables.append(_show(table))
            cold, _ = coldstart.run(server, sides, tasks=args.cold_tasks or (500 if quick else 2000), rounds=rounds, processes=args.processes, concurrency=args.concurrency)
            tables.append(_show(cold))
        if "ingress" in chosen:
            tables.append(_show(ingress.run(server, seconds=seconds, rounds=rounds, which=args.servers.split(","))[0]))
        if "dashboard" in chosen:
            rates = [int(r) for r in args.rates.split(",") if r.strip()]
            tables.append(_show(dashboard.run(server, rates=rates, seconds=seconds, clients=args.clients, rounds=rounds, max_fps=args.fps)[0]))
        if "storage" in chosen:
            tables.append(_show(storage.run(server, storage.parse_sizes(args.sizes or ("1k,5k" if quick else "10k,100k")))[0]))
    return tables


def _show(table: Table) -> Table:
    print(table.render(), flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        from bench import compare

        return compare.main(argv[1:])
    args = parse_args(argv)
    try:
        tables = run(args)
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    if args.markdown:
        args.markdown.write_text("\n".join(t.render() for t in tables))
    errors = [error for t in tables for error in t.errors]
    for error in errors:
        print(f"python -m bench: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
