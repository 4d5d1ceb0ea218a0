"""Scenario 2: ``serve`` (with its embedded worker) SIGKILLed while clients submit and block on results.

Clients retry a request that got no answer with the same messageId in the same context, as
the A2A docs tell them to; the retry must return the task the first request created.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import httpx
import pytest

from tests.faults.audit import assert_clean
from tests.faults.tools import A2A_HEADERS, report, send_message_body, states, sync_client

pytestmark = pytest.mark.faults

CLIENTS = 8
PER_CLIENT = 10
ENV = {"A2A_AGENT": "demo", "A2A_WORKER_LEASE": "2s", "A2A_WORKER_HEARTBEAT_INTERVAL": "200ms", "A2A_TASK_RETENTION_MAX_COMPLETED_TASKS": "100000"}


class BlockingClients:
    def __init__(self, url: str):
        self.url = url
        self.answers: dict[str, dict] = {}  # messageId -> the task the answer carried
        self.retried: set[str] = set()
        self.first_answer_after: dict[float, float] = {}
        self.answer_times: list[float] = []

    async def client(self, number: int) -> None:
        context_id = f"client-{number}"
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(PER_CLIENT):
                message_id = f"{context_id}-m{i}"
                body = send_message_body("sleep 0.5", message_id, context_id=context_id, request_id=i)
                while True:
                    try:
                        response = await http.post(f"{self.url}/a2a", json=body, headers=A2A_HEADERS)
                    except httpx.TransportError:
                        self.retried.add(message_id)
                        await asyncio.sleep(0.2)
                        continue
                    assert response.status_code == 200, response.text
                    self.answers[message_id] = response.json()["result"]["task"]
                    self.answer_times.append(time.monotonic())
                    break


async def test_serve_killed_while_clients_block(processes, store, redis_url):
    client = sync_client(store)
    first = processes.serve(redis_url, **ENV)
    clients = BlockingClients(first.url)
    jobs = [asyncio.create_task(clients.client(n)) for n in range(CLIENTS)]
    await asyncio.sleep(2)
    in_flight_at_kill = CLIENTS - sum(job.done() for job in jobs)
    acknowledged_before = {task_id for ctx in range(CLIENTS) for task_id in client.zrange(f"a2a:idx:context:client-{ctx}", 0, -1)}
    first.process.kill()
    first.wait()
    killed_at = time.monotonic()
    second = processes.serve(redis_url, **ENV)
    restarted_at = time.monotonic()
    clients.url = second.url
    await asyncio.wait_for(asyncio.gather(*jobs), 120)

    sent = [f"client-{n}-m{i}" for n in range(CLIENTS) for i in range(PER_CLIENT)]
    assert set(clients.answers) == set(sent)
    assert {task["status"]["state"] for task in clients.answers.values()} == {"TASK_STATE_COMPLETED"}
    by_context: dict[str, set[str]] = defaultdict(set)
    for message_id, task in clients.answers.items():
        by_context[task["contextId"]].add(task["id"])
        assert task["history"][0]["messageId"] == message_id
    task_ids = [task["id"] for task in clients.answers.values()]
    assert len(set(task_ids)) == len(sent)  # one task per message: retries made no duplicates
    for n in range(CLIENTS):
        assert set(client.zrange(f"a2a:idx:context:client-{n}", 0, -1)) == by_context[f"client-{n}"]
    assert acknowledged_before <= set(task_ids)
    assert set(states(client, list(acknowledged_before)).values()) == {"completed"}
    assert clients.retried, "no request was in flight at the kill: the test did not test anything"
    assert second.stop() == 0
    audit = assert_clean(client, task_ids)
    first_after = min(t for t in clients.answer_times if t > restarted_at)
    report(
        "server-crash", requests=len(sent), acknowledged_before_kill=len(acknowledged_before), clients_blocked_at_kill=in_flight_at_kill,
        retried_with_same_message_id=len(clients.retried), duplicates=0, lost=0,
        serve_restart_s=round(restarted_at - killed_at, 1), first_answer_after_restart_s=round(first_after - restarted_at, 1), audit=audit,
    )  # fmt: skip
