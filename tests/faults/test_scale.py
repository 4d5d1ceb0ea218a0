"""Scenario 6: two ``serve`` and three ``runworker`` processes on one Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest

from tests.agents import runs_key
from tests.faults.audit import assert_clean
from tests.faults.tools import A2A_HEADERS, SubmitFlow, count_finished, eventually, report, send_message_body, sync_client

pytestmark = pytest.mark.faults

TASKS = 5000
ENV = {"A2A_AGENT": "tests.agents.CountingAgent", "A2A_EMBEDDED_WORKERS": "0", "A2A_TASK_RETENTION_MAX_COMPLETED_TASKS": "100000"}


async def follow(url: str, task_id: str) -> list[dict]:
    """SubscribeToTask over SSE until the stream closes; the results in order."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": task_id}}
    results = []
    async with httpx.AsyncClient(timeout=60) as http, http.stream("POST", f"{url}/a2a", json=body, headers=A2A_HEADERS) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                results.append(json.loads(line[6:])["result"])
    return results


async def test_two_servers_three_workers(processes, store, redis_url):
    client = sync_client(store)
    servers = [processes.serve(redis_url, **ENV) for _ in range(2)]
    workers = [processes.worker(redis_url, **ENV) for _ in range(3)]
    for worker in workers:
        await eventually(lambda worker=worker: "Worker started" in worker.output, message="the workers to start")

    # A stream opened on server A follows a task submitted on server B.
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{servers[1].url}/a2a", json=send_message_body("2", str(uuid.uuid4()), blocking=False), headers=A2A_HEADERS)
    task_id = answer.json()["result"]["task"]["id"]
    events = await follow(servers[0].url, task_id)
    assert events[0]["task"]["id"] == task_id
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert events[-1]["statusUpdate"]["status"]["message"]["parts"] == [{"text": f"counted {task_id}"}]

    started = time.monotonic()
    flow = SubmitFlow([s.url for s in servers], limit=TASKS, text="0")
    await asyncio.gather(*flow.start(16))
    submitted_s = time.monotonic() - started
    ids = flow.acknowledged
    assert len(ids) == TASKS and not flow.errors and flow.hangs == 0
    await eventually(lambda: count_finished(client, ids) == TASKS, timeout=180, interval=0.5, message="every task to finish")
    done_s = time.monotonic() - started

    runs = client.hgetall(runs_key())
    ran = [int(runs.get(task_id, 0)) for task_id in ids]
    assert ran.count(1) == TASKS, f"not run: {ran.count(0)}, run more than once: {sum(1 for n in ran if n > 1)}"
    by_worker = {w.process.pid: 0 for w in workers}
    for record in await store.get_many(ids):
        by_worker[int(record.worker.split(":")[1])] += 1
    assert all(by_worker.values()), by_worker  # every worker took a share
    for process in [*workers, *servers]:
        assert process.stop() == 0
    audit = assert_clean(client, [*ids, task_id])
    report(
        "horizontal-scale", tasks=TASKS, servers=2, workers=3, lost=0, processed_twice=0, duplicated_history=0,
        submit_s=round(submitted_s, 1), all_done_s=round(done_s, 1), per_worker=sorted(by_worker.values()),
        cross_server_stream_events=len(events), audit=audit,
    )  # fmt: skip
