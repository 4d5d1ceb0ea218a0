"""``python -m bench compare``: our figures at an earlier version beside the current ones, in one run.

    python -m bench compare --baseline c3684fc                     all four benchmarks, 3 rounds
    python -m bench compare --baseline main~3 storage --quick      one, small sizes, one round
    python -m bench compare --baseline v1.0 ingress -- --seconds 2 options after -- go to both sides

The baseline is checked out as a clean git worktree in a temporary folder and run with
this interpreter (the requirements are the same). The current side is this working tree,
uncommitted changes included. Each round runs ``python -m bench NAME --rounds 1`` in the
baseline tree, then the same in the current tree, with the same options, so that machine
noise falls on both sides alike; only our side runs (no peers, no a2a-sdk server). Each
measure is the median over the rounds, and current/baseline says whether it got better.
A side that cannot run stops the comparison with its reason: a side is never left out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.__main__ import BENCHMARKS
from bench.common import ROOT, Table, fmt
from bench.measures import Measure, TableError, read, verdict

ONLY_OURS = ["--peers=", "--servers", "uvicorn,daphne"]  # the peers and the a2a-sdk's server are not compared
OWN_OPTIONS = ("--rounds", "--markdown")  # compare sets these on each side itself
LOG_TAIL = 15  # lines of a failed side's output shown
MODULES = {  # what each benchmark imports in its tree, checked before the first round
    "worker": ("bench.throughput", "bench.coldstart", "bench.peers"),
    "ingress": ("bench.ingress",),
    "dashboard": ("bench.dashboard",),
    "storage": ("bench.storage",),
}


class CompareError(RuntimeError):
    """The comparison cannot go on: a side that cannot run, or whose tables cannot be read."""


class BadRef(CompareError):
    """The baseline named is not a commit of this repository."""


@dataclass(frozen=True)
class Tree:
    label: str  # "baseline" or "current"
    path: Path
    commit: str  # short id, with "+ changes" when the working tree has uncommitted ones


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode:
        raise CompareError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout.strip()


def resolve(ref: str) -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except CompareError:
        raise BadRef(f"baseline {ref!r} is not a commit in {ROOT}: give a branch, tag or commit id") from None


@contextmanager
def baseline_tree(ref: str) -> Iterator[Tree]:
    """A clean worktree of ``ref`` in a temporary folder, removed afterwards."""
    commit = resolve(ref)
    folder = Path(tempfile.mkdtemp(prefix="a2a-bench-baseline-"))
    path = folder / "tree"
    try:
        git("worktree", "add", "--detach", "--quiet", str(path), commit)
        yield Tree("baseline", path, commit[:7])
    finally:
        if path.exists():
            git("worktree", "remove", "--force", str(path))
        shutil.rmtree(folder, ignore_errors=True)


def current_tree() -> Tree:
    changed = git("status", "--porcelain", "--untracked-files=no")
    return Tree("current", ROOT, git("rev-parse", "--short=7", "HEAD") + (" + changes" if changed else ""))


def tree_env(tree: Tree, workdir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree.path)}  # the tree's own code, whatever this process was given
    if workdir:  # the logs and data folders the benchmarks leave go away with the comparison's own
        env["TMPDIR"] = str(workdir)
    return env


def run_bench(tree: Tree, args: list[str], workdir: Path) -> tuple[str, str]:
    """``python -m bench ARGS`` in the tree, with this interpreter; its Markdown tables and its output."""
    out, log = workdir / f"{tree.label}.md", workdir / f"{tree.label}.log"
    out.unlink(missing_ok=True)
    with open(log, "wb") as sink:
        code = subprocess.run([sys.executable, "-m", "bench", *args, "--markdown", str(out)], cwd=tree.path, env=tree_env(tree, workdir), stdout=sink, stderr=subprocess.STDOUT).returncode
    output = log.read_text(errors="replace")
    if code or not out.exists():
        tail = "\n".join(f"    {line}" for line in output.strip().splitlines()[-LOG_TAIL:])
        raise CompareError(f"the {tree.label} side ({tree.commit}) failed: python -m bench {' '.join(args)} exited with status {code}:\n{tail}")
    return out.read_text(), output


def check_imports(tree: Tree, benchmarks: list[str]) -> None:
    """Fail at once, with the reason, when the tree's benchmarks cannot even be imported."""
    modules = ", ".join(["bench.__main__", *(module for name in benchmarks for module in MODULES[name])])
    done = subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=tree.path, env=tree_env(tree), capture_output=True, text=True)
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CompareError(f"the {tree.label} side ({tree.commit}) cannot import its benchmarks with {sys.executable}: {reason}")


@dataclass
class Rounds:
    """Every round's figures of one benchmark, by (table, measure) in the order first seen, then by side."""

    values: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)
    better: dict[tuple[str, str], str | None] = field(default_factory=dict)
    digits: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, side: str, tables: dict[str, dict[str, Measure]]) -> None:
        for table, measures in tables.items():
            for name, measure in measures.items():
                key = (table, name)
                self.values.setdefault(key, {}).setdefault(side, []).append(measure.value)
                self.better[key] = measure.better
                self.digits[key] = max(self.digits.get(key, 0), measure.digits)

    def median(self, key: tuple[str, str], side: str) -> float:
        values = [v for v in self.values[key].get(side, []) if v == v]  # NaN: not measured that round
        return statistics.median(values) if values else float("nan")


def compare_table(benchmark: str, rounds: Rounds, trees: tuple[Tree, Tree], count: int, tolerance: float) -> Table:
    baseline, current = trees
    out = Table(
        f"{benchmark}: ours at baseline {baseline.commit} and current {current.commit}, median of {count} round(s)",
        ["measure", "baseline", "current", "current/baseline", "verdict"],
    )
    several = len({table for table, _ in rounds.values}) > 1  # the worker benchmark's steady and cold-start tables
    for key in rounds.values:
        before, after = rounds.median(key, "baseline"), rounds.median(key, "current")
        ratio, said = verdict(rounds.better[key], before, after, tolerance)
        table, name = key
        out.add(f"{table}: {name}" if several else name, fmt(before, rounds.digits[key]), fmt(after, rounds.digits[key]), ratio, said)
    out.notes.append(f"higher is better for rates (/s), lower for times, CPU, memory and errors; 'even' is within {tolerance * 100:g}%")
    out.notes.append("each round ran the baseline, then the current tree, with the same options; '-' is a measure one side does not report")
    return out


def run_benchmark(benchmark: str, trees: tuple[Tree, Tree], options: list[str], count: int, workdir: Path) -> tuple[Rounds, str]:
    rounds, output = Rounds(), ""
    for number in range(1, count + 1):
        took = []
        for tree in trees:  # baseline first, then current, every round
            started = time.monotonic()
            text, output = run_bench(tree, [benchmark, *options], workdir)
            try:
                rounds.add(tree.label, read(text))
            except TableError as exc:
                raise CompareError(f"the {tree.label} side ({tree.commit}) reported an error in {benchmark}: {exc}") from None
            took.append(f"{tree.label} {time.monotonic() - started:.0f} s")
        print(f"[{benchmark}] round {number}/{count}: {', '.join(took)}", file=sys.stderr, flush=True)
    return rounds, output


def machine(output: str) -> str:
    return next((line for line in output.splitlines() if line.startswith("Machine:")), "")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, passed = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        prog="python -m bench compare",
        usage="%(prog)s --baseline REF [BENCHMARK ...] [--quick] [--rounds N] [--tolerance PERCENT] [--markdown FILE] [-- BENCH OPTIONS]",
        description="Our side's benchmark figures at an earlier git ref beside the current tree's, in alternating rounds of one run.",
        epilog="Options after -- go to python -m bench on both sides, for example: -- --sizes 10k,100k --seconds 2",
    )
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--baseline", required=True, metavar="REF", help="the git branch, tag or commit to compare with")
    parser.add_argument("--quick", action="store_true", help="small sizes on both sides, and one round unless --rounds says otherwise")
    parser.add_argument("--rounds", type=int, metavar="N", help="rounds, each running baseline then current; the median is reported (default 3, quick 1)")
    parser.add_argument("--tolerance", type=float, default=5.0, metavar="PERCENT", help="a change within this is 'even' (default 5)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the comparison tables to this file")
    args = parser.parse_args(ours)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: expected any of {', '.join(BENCHMARKS)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be 1 or more, not {args.rounds}")
    if args.tolerance < 0:
        parser.error(f"--tolerance must be 0 or more, not {args.tolerance:g}")
    taken = [option for option in passed if option.split("=", 1)[0] in OWN_OPTIONS]
    if taken:
        parser.error(f"{', '.join(taken)} after -- : compare sets it on each side itself (give --rounds before --)")
    return args, passed


def main(argv: list[str] | None = None) -> int:
    args, passed = parse_args(sys.argv[1:] if argv is None else argv)
    count = args.rounds or (1 if args.quick else 3)
    benchmarks = args.benchmarks or list(BENCHMARKS)
    options = [*ONLY_OURS, *passed, *(["--quick"] if args.quick else []), "--rounds", "1"]
    tables: list[Table] = []
    try:
        with baseline_tree(args.baseline) as baseline, tempfile.TemporaryDirectory(prefix="a2a-bench-compare-") as workdir:
            trees = (baseline, current_tree())
            for tree in trees:
                check_imports(tree, benchmarks)
            print(f"Comparing baseline {args.baseline} ({baseline.commit}) with current {trees[1].commit}: {count} round(s) each\n", flush=True)
            for number, benchmark in enumerate(benchmarks):
                rounds, output = run_benchmark(benchmark, trees, options, count, Path(workdir))
                if number == 0 and machine(output):
                    print(f"{machine(output)}\n", flush=True)
                tables.append(compare_table(benchmark, rounds, trees, count, args.tolerance / 100))
                print(tables[-1].render(), flush=True)
    except CompareError as exc:
        print(f"python -m bench compare: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BadRef) else 1
    finally:
        if args.markdown and tables:
            args.markdown.write_text("\n".join(t.render() for t in tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
