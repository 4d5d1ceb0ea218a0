"""GET /metrics: Prometheus text read from Redis, optionally behind a bearer token."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from queueapp.states import TaskState
from queueapp.worker.updater import ClaimUpdater
from tests.dashboard.support import submit

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_report_queue_states_totals_workers_and_redis(server, dash_store):
    for i in range(3):
        await submit(dash_store, f"job {i}")
    record = await submit(dash_store, "fails")
    await dash_store.finish_unclaimed(await dash_store.require(record.id), TaskState.FAILED, "boom")
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("a2a_queue_length", ())] == 3
    assert found[("a2a_tasks_active", ())] == 3
    assert found[("a2a_tasks", (("state", "submitted"),))] == 3
    assert found[("a2a_tasks", (("state", "failed"),))] == 1
    assert found[("a2a_tasks_finished_total", (("state", "failed"),))] == 1
    assert found[("a2a_tasks_finished_total", (("state", "completed"),))] == 0
    assert found[("a2a_workers_live", ())] == 0
    assert 0 < found[("a2a_redis_roundtrip_seconds", ())] < 5
    for name in ("a2a_task_wait_seconds_avg_1h", "a2a_task_run_seconds_avg_1h", "a2a_task_wait_count_1h", "a2a_task_run_seconds_sum_1h",
                 "a2a_task_wait_seconds_p50_1h", "a2a_task_run_seconds_p95_1h"):
        assert (name, ()) in found


async def test_hourly_wait_and_run_times_count_rejected_tasks(server, dash_store):
    # finish.lua measures a rejected task's wait and run time; the hour's figures must weigh it.
    await submit(dash_store, "say no")
    await asyncio.sleep(0.02)
    ids, _ = await dash_store.take(1)
    [claim] = await dash_store.lease(ids, "w1", 30)
    await asyncio.sleep(0.02)
    await ClaimUpdater(dash_store, claim).reject("no")
    async with httpx.AsyncClient(base_url=server) as client:
        found = samples((await client.get("/metrics")).text)
    assert found[("a2a_tasks_finished_total", (("state", "rejected"),))] == 1
    assert found[("a2a_task_wait_count_1h", ())] == 1 and found[("a2a_task_run_count_1h", ())] == 1
    assert 0.02 <= found[("a2a_task_run_seconds_avg_1h", ())] < 5


async def test_metrics_token_is_required_when_set(server, set_config):
    set_config(metrics_token="s3cret")
    async with httpx.AsyncClient(base_url=server) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    # What to send, said in the Status form of the other machine paths, as UNAUTHENTICATED.
    error = missing.json()["error"]
    assert error["status"] == "UNAUTHENTICATED" and "Authorization: Bearer <A2A_METRICS_TOKEN>" in error["message"]
    assert wrong.status_code == 401
    assert right.status_code == 200 and "a2a_queue_length" in right.text
