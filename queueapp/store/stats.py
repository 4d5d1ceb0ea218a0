"""Counts, per-minute stats and the worker list, as the dashboard and /metrics show them."""

from __future__ import annotations

from queueapp import histogram, model
from queueapp.states import FINISHED, TaskState
from queueapp.store import workers as registry
from queueapp.store.base import StoreBase
from queueapp.store.results import Stats


class Statistics(StoreBase):
    async def stats(self, minutes: int = 60) -> Stats:
        k = self.keys
        now = model.now_ms()
        current_minute = now // 60000
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(k.queue)
        pipe.zcard(k.index_active)
        pipe.hgetall(k.counts)
        pipe.exists(k.paused)
        pipe.zrangebyscore(k.workers, now - int(self.worker_lease * 1000), "+inf", withscores=True)
        for minute in range(current_minute - minutes + 1, current_minute + 1):
            pipe.hgetall(k.stats_minute(minute))
        results = await pipe.execute()
        queue_length, active, counts, paused, workers = results[:5]
        by_state = {s.value: max(int(counts.get(s.value, 0)), 0) for s in TaskState if s is not TaskState.UNKNOWN}
        totals = {key.removeprefix("total_"): int(v) for key, v in counts.items() if key.startswith("total_")}
        per_minute = []
        for offset, row in enumerate(results[5:]):
            minute = current_minute - minutes + 1 + offset
            wait_buckets, run_buckets = histogram.counts(row, histogram.WAIT), histogram.counts(row, histogram.RUN)
            waited, ran = sum(wait_buckets.values()), sum(run_buckets.values())  # each measured time is in one bucket
            per_minute.append(
                {
                    "minute_ms": minute * 60000,
                    **{s.value: int(row.get(s.value, 0)) for s in FINISHED},
                    "finished": sum(int(row.get(s.value, 0)) for s in FINISHED),
                    "avg_wait_ms": int(row.get("wait_ms", 0)) / waited if waited else 0,
                    "avg_run_ms": int(row.get("run_ms", 0)) / ran if ran else 0,
                    "wait_buckets": wait_buckets,
                    "run_buckets": run_buckets,
                }
            )
        worker_list = await registry.describe(self.redis, self.keys, workers, now)
        return Stats(int(queue_length), int(active), by_state, totals, per_minute, worker_list, bool(paused))
