"""The conformance agent, each behaviour through the real store and a real Worker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from queueapp import model
from queueapp.agents import Agent, load_agent
from queueapp.agents.conformance import BEHAVIOURS, ConformanceAgent, behaviour_for
from queueapp.model import Json, TaskRecord
from queueapp.states import TaskState
from queueapp.store import QueueStore
from queueapp.worker import Worker
from queueapp.worker.updater import EventHook

# ---- helpers shared by the agent and push tests ---------------------------------------------


@contextlib.asynccontextmanager
async def running_worker(store: QueueStore, config, agent: Agent, hooks: list[EventHook] | None = None) -> AsyncIterator[Worker]:
    """A real Worker claiming from ``store`` for the duration of the block."""
    worker = Worker(store, agent, config, hooks=hooks or [], run_maintenance=False)
    job = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await job


async def until(predicate: Callable[[], object], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def wait_for_state(store: QueueStore, task_id: str, *states: TaskState, timeout: float = 20) -> TaskRecord:
    """Poll the task until it reaches one of ``states`` (any terminal state when none given)."""
    wanted = set(states) or {s for s in TaskState if s.is_terminal}
    async with asyncio.timeout(timeout):
        while True:
            record = await store.require(task_id)
            if record.state in wanted:
                return record
            await asyncio.sleep(0.02)


async def agent_events(store: QueueStore, task_id: str) -> list[Json]:
    """The task's events after the initial Task and the worker's own first ``working``."""
    events = [event for _, event in await store.read_events(task_id)]
    assert "task" in events[0]
    assert events[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    return events[2:]


def describe(event: Json) -> str:
    if "statusUpdate" in event:
        return event["statusUpdate"]["status"]["state"].removeprefix("TASK_STATE_").lower()
    if "artifactUpdate" in event:
        return "artifact"
    return next(iter(event))


# ---- the agent -------------------------------------------------------------------------------


@pytest.fixture
def conformance_config(config):
    return config.replace(conformance_resubscribe_delay=0.3)


async def run_one(store: QueueStore, config, message_id: str, *states: TaskState) -> tuple[TaskRecord, list[Json]]:
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")], message_id=message_id))
    async with running_worker(store, config, load_agent("conformance", config)):
        done = await wait_for_state(store, record.id, *states)
    return done, await agent_events(store, record.id)


def artifact_parts(record: TaskRecord) -> list[Json]:
    assert len(record.task["artifacts"]) == 1
    return record.task["artifacts"][0]["parts"]


def test_prefixes_are_matched_longest_first_where_they_overlap():
    prefixes = [prefix for prefix, _ in BEHAVIOURS]
    for index, prefix in enumerate(prefixes):
        for later in prefixes[index + 1 :]:
            assert not later.startswith(prefix), f"{later} would never match after {prefix}"
    assert behaviour_for("tck-artifact-file-url-7").__name__ == "_artifact_file_url"
    assert behaviour_for("tck-artifact-file-7").__name__ == "_artifact_file"
    assert behaviour_for("something-else").__name__ == "_complete"


def test_resubscribe_delay_comes_from_the_setting(make_config):
    agent = load_agent("conformance", make_config(A2A_CONFORMANCE_RESUBSCRIBE_DELAY="750ms"))
    assert isinstance(agent, ConformanceAgent) and agent.resubscribe_delay == 0.75


@pytest.mark.parametrize("message_id", ["tck-complete-task-1", "anything-else-2"])
async def test_complete_task_and_unknown_prefixes_say_hello(store, conformance_config, message_id):
    done, events = await run_one(store, conformance_config, message_id)
    assert done.state is TaskState.COMPLETED
    assert model.message_text(done.task["status"]["message"]) == "Hello from TCK"
    assert done.task["history"][-1]["role"] == "ROLE_AGENT"
    assert [describe(e) for e in events] == ["completed"]


async def test_artifact_text(store, conformance_config):
    done, events = await run_one(store, conformance_config, "tck-artifact-text-1")
    assert done.state is TaskState.COMPLETED
    assert artifact_parts(done) == [{"text": "Generated text content"}]
    assert [describe(e) for e in events] == ["artifact", "completed"]


async def test_artifact_file(store, conformance_config):
    done, _ = await run_one(store, conformance_config, "tck-artifact-file-1")
    [part] = artifact_parts(done)
    assert part["filename"] == "output.txt" and part["mediaType"] == "text/plain"
    assert base64.b64decode(part["raw"]).decode()


async def test_artifact_file_url(store, conformance_config):
    done, _ = await run_one(store, conformance_config, "tck-artifact-file-url-1")
    assert artifact_parts(done) == [{"url": "https://example.com/output.txt", "filename": "output.txt", "mediaType": "text/plain"}]


async def test_artifact_data(store, conformance_config):
    done, _ = await run_one(store, conformance_config, "tck-artifact-data-1")
    [part] = artifact_parts(done)
    assert part["data"] == {"key": "value", "count": 42}


async def test_message_response_is_a_direct_message(store, conformance_config):
    done, events = await run_one(store, conformance_config, "tck-message-response-1")
    assert done.state is TaskState.COMPLETED
    assert [describe(e) for e in events] == ["message"]
    assert model.message_text(events[0]["message"]) == "Direct message response"
    assert events[0]["message"]["role"] == "ROLE_AGENT"


async def test_input_required_until_a_complete_task_follow_up(store, conformance_config):
    """Follow-ups with the same prefix keep asking (the kit builds history so); tck-complete-task ends it."""
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")], message_id="tck-input-required-1"))
    async with running_worker(store, conformance_config, load_agent("conformance", conformance_config)):
        waiting = await wait_for_state(store, record.id, TaskState.INPUT_REQUIRED)
        assert model.message_text(waiting.task["status"]["message"])
        await store.continue_task(record.id, model.message("user", [model.text_part("more")], message_id="tck-input-required-2"))
        async with asyncio.timeout(20):  # the second run asks again
            while [describe(e) for _, e in await store.read_events(record.id)].count("input_required") < 2:
                await asyncio.sleep(0.02)
        again = await store.require(record.id)
        assert again.state is TaskState.INPUT_REQUIRED
        assert len([m for m in again.task["history"] if m["role"] == "ROLE_USER"]) == 2
        await store.continue_task(record.id, model.message("user", [model.text_part("done")], message_id="tck-complete-task-3"))
        done = await wait_for_state(store, record.id)
    assert done.state is TaskState.COMPLETED
    assert model.message_text(done.task["status"]["message"]) == "Hello from TCK"


async def test_reject_task(store, conformance_config):
    done, events = await run_one(store, conformance_config, "tck-reject-task-1")
    assert done.state is TaskState.REJECTED
    assert model.message_text(done.task["status"]["message"]) == "rejected"
    assert [describe(e) for e in events] == ["rejected"]


@pytest.mark.parametrize("prefix", ["tck-stream-001", "tck-stream-003", "tck-stream-ordering-001", "tck-stream-artifact-text"])
async def test_stream_working_text_artifact_completed(store, conformance_config, prefix):
    done, events = await run_one(store, conformance_config, f"{prefix}-x")
    assert [describe(e) for e in events] == ["working", "artifact", "completed"]
    assert events[1]["artifactUpdate"]["artifact"]["parts"] == [{"text": "Generated text content"}]
    assert done.state is TaskState.COMPLETED


async def test_stream_002_completes(store, conformance_config):
    done, events = await run_one(store, conformance_config, "tck-stream-002-x")
    assert [describe(e) for e in events] == ["completed"]
    assert done.state is TaskState.COMPLETED


async def test_stream_artifact_file(store, conformance_config):
    _, events = await run_one(store, conformance_config, "tck-stream-artifact-file-x")
    assert [describe(e) for e in events] == ["working", "artifact", "completed"]
    [part] = events[1]["artifactUpdate"]["artifact"]["parts"]
    assert (part["filename"], part["mediaType"]) == ("output.txt", "text/plain")


async def test_stream_artifact_chunked(store, conformance_config):
    done, events = await run_one(store, conformance_config, "tck-stream-artifact-chunked-x")
    assert [describe(e) for e in events] == ["working", "artifact", "artifact", "completed"]
    first, second = (e["artifactUpdate"] for e in events[1:3])
    assert (first["artifact"]["parts"], first["append"], first["lastChunk"]) == ([{"text": "chunk-1 "}], False, False)
    assert (second["artifact"]["parts"], second["append"], second["lastChunk"]) == ([{"text": "chunk-2"}], True, True)
    assert first["artifact"]["artifactId"] == second["artifact"]["artifactId"]
    assert artifact_parts(done) == [{"text": "chunk-1 "}, {"text": "chunk-2"}]


async def test_resubscribe_works_then_completes_after_the_delay(store, conformance_config):
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")], message_id="test-resubscribe-message-id-1"))
    async with running_worker(store, conformance_config, load_agent("conformance", conformance_config)):
        working = await wait_for_state(store, record.id, TaskState.WORKING)
        assert working.state is TaskState.WORKING
        done = await wait_for_state(store, record.id)
    assert done.state is TaskState.COMPLETED
    assert [describe(e) for e in await agent_events(store, record.id)] == ["working", "completed"]


async def test_resubscribe_wait_ends_on_cancel(store, config):
    slow = config.replace(conformance_resubscribe_delay=120.0)
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")], message_id="test-resubscribe-message-id-2"))
    async with running_worker(store, slow, load_agent("conformance", slow)):
        await wait_for_state(store, record.id, TaskState.WORKING)
        await store.request_cancel(record.id)
        done = await wait_for_state(store, record.id)
    assert done.state is TaskState.CANCELED
