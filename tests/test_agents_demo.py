"""The built-in echo and demo agents, run by the worker's runner on the queue (fakeredis)."""

from __future__ import annotations

import asyncio

import pytest

from queueapp.agents import AgentLoadError, load_agent
from queueapp.agents.echo import echo_reply
from queueapp.model import message_text
from queueapp.store import QueueStore
from queueapp.worker.runner import RunningTask, execute
from tests.faults.tools import user_message


async def run_next(store: QueueStore, agent_name: str = "demo", timeout: float = 10, on_start=None):
    """Claim the next waiting task and run the agent on it to the end; returns the stored record."""
    ids, _ = await store.take(1)
    [claim] = await store.lease(ids, "test-worker", 30)
    running = RunningTask(claim)
    job = asyncio.create_task(execute(store, load_agent(agent_name), running, timeout, []))
    if on_start:
        await on_start(running)
    await job
    return await store.require(claim.record.id)


async def send(store: QueueStore, text: str, agent_name: str = "demo", **kwargs):
    await store.create_task(user_message(text))
    return await run_next(store, agent_name, **kwargs)


def reply_of(record) -> str:
    return message_text(record.task["status"].get("message"))


def event_kinds(events) -> list[str]:
    return [next(iter(e)) for _, e in events]


async def test_echo_replies_with_message_and_artifact(fake_store):
    record = await send(fake_store, "hello there", "echo")
    expected = "Task processed successfully using Redis queue storage. Benefits: persistent storage, horizontal scaling, and reliable processing. Original input: hello there"
    assert record.state.value == "completed"
    assert reply_of(record) == expected == echo_reply("hello there")
    assert record.task["artifacts"][0]["parts"] == [{"text": expected}]
    assert record.task["history"][-1]["role"] == "ROLE_AGENT"


async def test_demo_sleep_reports_progress_then_completes(fake_store):
    record = await send(fake_store, "sleep 1.5")
    assert record.state.value == "completed" and reply_of(record) == "Slept 1.5s"
    progress = [e["statusUpdate"]["status"].get("message", {}).get("metadata", {}).get("progress") for _, e in await fake_store.read_events(record.id) if "statusUpdate" in e]
    assert progress[:3] == [None, 0.0, pytest.approx(1 / 1.5, abs=0.001)]  # "working", start, after one second


async def test_demo_sleep_stops_when_canceled(fake_store):
    async def cancel_soon(running: RunningTask) -> None:
        await asyncio.sleep(0.2)
        running.cancel_reason = "Canceled by request"
        running.cancelled.set()

    record = await send(fake_store, "sleep 30", on_start=cancel_soon)
    assert record.state.value == "canceled"


async def test_demo_fail_and_reject(fake_store):
    failed = await send(fake_store, "fail disk on fire")
    assert failed.state.value == "failed" and failed.error == "disk on fire" and reply_of(failed) == "disk on fire"
    rejected = await send(fake_store, "reject")
    assert rejected.state.value == "rejected" and reply_of(rejected) == "rejected on request"


async def test_demo_ask_then_the_answer_completes(fake_store):
    asked = await send(fake_store, "ask Which port?")
    assert asked.state.value == "input-required" and reply_of(asked) == "Which port?"
    await fake_store.continue_task(asked.id, user_message("8080"))
    answered = await run_next(fake_store)
    assert answered.id == asked.id
    assert answered.state.value == "completed" and reply_of(answered) == "Thanks, got your answer: 8080"


async def test_demo_chunks_stream_one_artifact(fake_store):
    record = await send(fake_store, "chunks 4")
    [artifact] = record.task["artifacts"]
    assert [p["text"] for p in artifact["parts"]] == ["chunk-1 ", "chunk-2 ", "chunk-3 ", "chunk-4 "]
    updates = [e["artifactUpdate"] for _, e in await fake_store.read_events(record.id) if "artifactUpdate" in e]
    assert [(u["append"], u["lastChunk"]) for u in updates] == [(False, False), (True, False), (True, False), (True, True)]
    assert {u["artifact"]["artifactId"] for u in updates} == {artifact["artifactId"]}


@pytest.mark.parametrize("text", ["anything else", "sleep forever", "chunks many", ""])
async def test_demo_echoes_what_it_does_not_understand(fake_store, text):
    record = await send(fake_store, text)
    assert record.state.value == "completed" and reply_of(record) == echo_reply(text)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuchagent", "A2A_AGENT='nosuchagent' is invalid: expected one of"),
        ("tests.agents.Missing", "A2A_AGENT='tests.agents.Missing' is invalid: cannot import tests.agents.Missing"),
        ("tests.agents.runs_key", "is not a subclass of queueapp.agents.Agent"),
    ],
)
def test_bad_agent_names_are_refused(name, message):
    with pytest.raises(AgentLoadError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_agent(name)


def test_runworker_refuses_a_bad_agent(redis_url, tmp_path):
    from tests.faults.tools import manage
    from tests.support import base_env

    result = manage("runworker", env=base_env(redis_url, str(tmp_path), A2A_AGENT="no.such.Agent"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("CommandError: A2A_AGENT='no.such.Agent' is invalid: cannot import no.such.Agent")
