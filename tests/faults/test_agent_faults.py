"""Scenario 7: agents that raise, hang past the time limit, or report an invalid event."""

from __future__ import annotations

import pytest

from tests.faults.audit import assert_clean
from tests.faults.tools import count_finished, eventually, report, submit, sync_client

pytestmark = pytest.mark.faults

EXPECTED = {
    "raise": "RuntimeError: agent exploded on 'raise'",
    "hang": "Task exceeded the time limit of 1s",
    "invalid": "Invalid agent response: a part must have exactly one of text, raw, url, data: {'bogus': 1}",
}


async def test_agent_faults_fail_the_task_with_the_reason_and_the_worker_goes_on(processes, store, redis_url):
    client = sync_client(store)
    worker = processes.worker(redis_url, A2A_AGENT="tests.agents.FaultyAgent", A2A_TASK_TIMEOUT="1s", A2A_WORKER_CONCURRENCY="2")
    ids = {kind: await submit(store, 3, kind) for kind in EXPECTED}
    fine = await submit(store, 3, "fine")  # queued behind the faults: the worker must go on to them
    every = [t for group in ids.values() for t in group] + fine
    await eventually(lambda: count_finished(client, every) == len(every), timeout=60, message="every task to end")
    for kind, reason in EXPECTED.items():
        for record in await store.get_many(ids[kind]):
            assert record.state.value == "failed", (kind, record.state)
            assert record.error == reason
            assert record.task["status"]["message"]["parts"] == [{"text": reason}]
            assert f"Task failed, task_id={record.id}" in worker.output
    assert {r.state.value for r in await store.get_many(fine)} == {"completed"}
    assert worker.process.poll() is None  # still running
    assert worker.stop() == 0
    audit = assert_clean(client, every)
    report("agent-faults", tasks=len(every), failed_with_reason=9, completed_after=3, lost=0, worker_alive=True, audit=audit)
