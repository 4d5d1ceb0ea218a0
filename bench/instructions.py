"""Redis instructions per task: a cost that machine noise does not move.

CPU time on a shared machine moves by tens of percent from one run to the next; the
instructions redis-server executes for the same work move by under 1%. This runs
redis-server under valgrind's callgrind, has the store create, claim and finish small
tasks in batches as a worker does (and, for the last row, delete them as retention does),
and reports instructions per task. Each figure is the difference between two runs of
different sizes, so that start-up and shutdown cancel out. Kernel time (network system
calls, page faults) is not counted: compare versions with it, and read CPU time from the
other benchmarks.

    python -m bench.instructions [--rounds 50] [--batch 10] [--subscribers 0] [--reply-bytes 0]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio as aioredis

from bench.common import Table, fmt
from bench.storage import KEY_NAMES, REPLY, finished_tasks
from queueapp import model
from queueapp.store import QueueStore
from tests.support import free_port, redis_server_binary

WARM_UP = 20  # tasks finished before counting starts: scripts loaded, keys created
MODES = ("create", "claim and finish", "delete")


@dataclass(frozen=True)
class Load:
    batch: int = 10  # tasks per script call, as a worker of this concurrency sends them
    subscribers: int = 0  # connections subscribed to the notify channel
    reply: str = REPLY  # the agent's answer: a finish passes it twice, in the task and in its event

    def describe(self) -> str:
        size = "a one-line reply" if self.reply == REPLY else f"a reply of {len(self.reply):,} bytes"
        return f"batches of {self.batch}, {self.subscribers or 'no'} notify subscribers, {size}"


async def _work(port: int, mode: str, rounds: int, load: Load) -> None:
    client = aioredis.Redis(port=port, decode_responses=True)
    for _ in range(600):  # valgrind starts redis-server slowly
        try:
            await client.ping()
            break
        except (OSError, redis.ConnectionError):
            await asyncio.sleep(0.1)
    store = QueueStore(client, KEY_NAMES)
    listeners = [client.pubsub() for _ in range(load.subscribers)]
    for listener in listeners:
        await listener.subscribe(KEY_NAMES.notify)
    readers = [asyncio.ensure_future(_drain(listener)) for listener in listeners]
    await finished_tasks(store, WARM_UP, reply=load.reply)
    question = model.message("user", [model.text_part("What is the weather in Lisbon today?")])
    for _ in range(rounds):
        if mode == "create":
            await asyncio.gather(*(store.create_task({**question, "messageId": model.new_id()}) for _ in range(load.batch)))
            continue
        ids = await finished_tasks(store, load.batch, reply=load.reply)
        if mode == "delete":
            await asyncio.gather(*(store.delete(task_id, only_finished=True) for task_id in ids))
    await asyncio.sleep(0.5)  # the subscribers read what was published
    for reader in readers:
        reader.cancel()
    try:
        await client.shutdown(nosave=True)
    except (OSError, redis.ConnectionError):
        pass  # the server closes the connection as it exits


async def _drain(listener: aioredis.client.PubSub) -> None:
    while True:
        await listener.get_message(timeout=1)


def instructions(mode: str, rounds: int, load: Load) -> int:
    """Instructions redis-server executed in a whole run: start, warm-up, the work, shutdown."""
    folder = Path(tempfile.mkdtemp(prefix="a2a-bench-instructions-"))
    port = free_port()
    out = folder / "callgrind.out"
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(_work(port, mode, rounds, load))
        server.wait(120)
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        raise RuntimeError(f"callgrind wrote no summary to {out}")
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def per_task(mode: str, rounds: int, load: Load) -> float:
    small, large = instructions(mode, 1, load), instructions(mode, rounds + 1, load)
    return (large - small) / (rounds * load.batch)


def run(rounds: int, load: Load) -> Table:
    if not shutil.which("valgrind"):
        raise RuntimeError("valgrind is not installed (apt-get install -y valgrind)")
    whole = {mode: per_task(mode, rounds, load) for mode in MODES}
    # Each mode repeats the one before it and adds a step: the step's cost is the difference.
    steps = {"create": whole["create"], "claim and finish": whole["claim and finish"] - whole["create"], "delete": whole["delete"] - whole["claim and finish"]}
    out = Table(f"Redis instructions per task: {rounds * load.batch} tasks, {load.describe()}", ["step", "instructions per task"])
    for step, value in steps.items():
        out.add(step, fmt(value))
    out.add("the whole life", fmt(whole["delete"]))
    out.notes.append("valgrind --tool=callgrind on redis-server; user-space instructions only, the difference between a run of 1 round and one of rounds + 1")
    out.notes.append("claim and finish: take, lease and finish as a worker does them, each a script call for the whole batch; delete: retention's way, a script call for the tasks deleted in one turn of the event loop")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="batches counted (default 50; with few, Lua's garbage collection falls unevenly between the steps, the whole life much less)")
    parser.add_argument("--batch", type=int, default=Load.batch, help=f"tasks per batch (default {Load.batch}, a worker's default concurrency)")
    parser.add_argument("--subscribers", type=int, default=Load.subscribers, help="connections subscribed to the notify channel, as serve processes are (default none)")
    parser.add_argument("--reply-bytes", type=int, help="the agent's reply, in bytes (default: one short line)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.batch < 1 or args.subscribers < 0 or (args.reply_bytes is not None and args.reply_bytes < 1):
        parser.error("--rounds, --batch and --reply-bytes must be at least 1, --subscribers at least 0")
    reply = REPLY if args.reply_bytes is None else "x" * args.reply_bytes
    print(run(args.rounds, Load(args.batch, args.subscribers, reply)).render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
