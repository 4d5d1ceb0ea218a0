"""``GET /metrics``: Prometheus text built from the store's counters on each scrape.

Nothing is counted in this process: every figure comes from Redis (``store.stats()``),
so any server process gives the same answer and a restart loses nothing.

Wait and run times: the store keeps per-minute sums and counts, not per-task buckets,
so they are exposed as last-hour gauges (average, sum and count over the window) rather
than as a histogram with made-up buckets.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from queueapp import config, histogram
from queueapp.model import dumps
from queueapp.protocol.errors import ProtocolError, UnauthenticatedError, from_unexpected, path_error, wire
from queueapp.services import get_store
from queueapp.states import FINISHED
from queueapp.store import Stats


class StatsCollector:
    """A one-shot collector over figures already read from Redis."""

    def __init__(self, stats: Stats, redis_rtt_s: float):
        self.stats = stats
        self.redis_rtt_s = redis_rtt_s

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        yield GaugeMetricFamily("a2a_queue_length", "Tasks waiting in the queue.", value=s.queue_length)
        yield GaugeMetricFamily("a2a_tasks_active", "Unfinished tasks (waiting, running or interrupted).", value=s.active)
        yield GaugeMetricFamily("a2a_queue_paused", "1 while the queue is paused.", value=int(s.paused))
        by_state = GaugeMetricFamily("a2a_tasks", "Tasks stored now, by state.", labels=["state"])
        for state, count in s.by_state.items():
            by_state.add_metric([state], count)
        yield by_state
        totals = CounterMetricFamily("a2a_tasks_finished", "Tasks finished since the data began, by final state.", labels=["state"])
        for state in FINISHED:
            totals.add_metric([state.value], s.totals.get(state.value, 0))
        yield totals
        yield from self._times()
        yield GaugeMetricFamily("a2a_workers_live", "Workers that sent a heartbeat within the worker lease (A2A_WORKER_LEASE).", value=len(s.workers))
        yield GaugeMetricFamily("a2a_redis_roundtrip_seconds", "Time of one PING to Redis from this process.", value=self.redis_rtt_s)

    def _times(self) -> Iterator[Metric]:
        minutes = self.stats.per_minute
        for name, avg_key in (("wait", "avg_wait_ms"), ("run", "avg_run_ms")):
            # Each minute's average weighs as many tasks as finished in that minute, in any final state.
            weights = [(m[avg_key] / 1000, m["finished"]) for m in minutes]
            count = sum(n for value, n in weights if value > 0)
            total = sum(value * n for value, n in weights if value > 0)
            help_text = "queue wait (enqueued to claimed)" if name == "wait" else "run time (claimed to finished)"
            yield GaugeMetricFamily(f"a2a_task_{name}_seconds_avg_1h", f"Average task {help_text} over the last hour.", value=total / count if count else 0)
            yield GaugeMetricFamily(f"a2a_task_{name}_seconds_sum_1h", f"Sum of task {help_text} over the last hour.", value=total)
            yield GaugeMetricFamily(f"a2a_task_{name}_count_1h", f"Tasks with a measured {help_text} over the last hour.", value=count)
            merged = histogram.merge(m[f"{name}_buckets"] for m in minutes)
            for label, q in (("p50", 0.5), ("p95", 0.95)):
                value = histogram.percentile(merged, q)
                yield GaugeMetricFamily(
                    f"a2a_task_{name}_seconds_{label}_1h", f"{label} of task {help_text} over the last hour (within 10%).", value=(value or 0) / 1000
                )


def _authorized(request: HttpRequest, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def render_metrics() -> bytes:
    store = await get_store()
    started = time.perf_counter()
    await store.ping()
    rtt = time.perf_counter() - started
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(await store.stats(), rtt))
    return generate_latest(registry)


@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    token = config.get().metrics_token
    if token and not _authorized(request, token):
        response = _error(request, UnauthenticatedError("A bearer token is required: Authorization: Bearer <A2A_METRICS_TOKEN>"))
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        body = await render_metrics()
    except Exception as exc:
        return _error(request, from_unexpected(exc, "GET /metrics"))  # logged: one warning when Redis is away, a traceback for a bug
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _error(request: HttpRequest, error: ProtocolError) -> HttpResponse:
    """``error`` as the machine paths answer errors: a google.rpc.Status with its HTTP status."""
    return HttpResponse(dumps(path_error(request.path, error)), status=wire(error).http, content_type="application/json")
