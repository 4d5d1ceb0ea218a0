"""What Redis spent on a stretch of work: its CPU (``INFO cpu``) and the commands it ran (``INFO commandstats``).

The benchmark's own commands (these readings, and its polls while waiting for a side to
finish) are counted and left out, so that the figures are the side's alone. Commands run
inside a Lua script count one each, as does the script call itself: that is what Redis
executes.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from queueapp.store import Keys

# INFO itself is the meter's; it is never a side's command.
OWN_COMMANDS = ("cmdstat_info",)


@dataclass(frozen=True)
class Reading:
    cpu_s: float  # redis-server's user + system CPU since it started
    calls: int  # commands executed since it started, the meter's own left out
    tasks: int  # our tasks finished in any state since the Redis started


@dataclass(frozen=True)
class Cost:
    cpu_us: float  # per task
    commands: float  # per task
    tasks: int


class RedisMeter:
    """Readings of one Redis, and the cost per task between two of them."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.key_names = Keys()
        self.own_calls = 0  # commands this meter and its caller's polls sent, besides INFO

    def poll(self, *commands: tuple) -> list:
        """Run the caller's polling commands in one pipeline, counting them as the meter's own."""
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        self.own_calls += len(commands)
        return pipe.execute()

    def read(self) -> Reading:
        cpu = self.client.info("cpu")
        stats = self.client.info("commandstats")
        (counts,) = self.poll(("HGETALL", self.key_names.counts))
        calls = sum(int(v["calls"]) for k, v in stats.items() if k not in OWN_COMMANDS) - self.own_calls
        tasks = sum(int(v) for k, v in _pairs(counts) if k.startswith("total_"))
        return Reading(float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls, tasks)

    @staticmethod
    def cost(before: Reading, after: Reading) -> Cost | None:
        tasks = after.tasks - before.tasks
        if tasks <= 0:
            return None
        return Cost((after.cpu_s - before.cpu_s) / tasks * 1e6, (after.calls - before.calls) / tasks, tasks)

    def close(self) -> None:
        self.client.close()


def _pairs(reply: dict | list) -> list[tuple[str, str]]:
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2], strict=True))
