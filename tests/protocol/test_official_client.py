"""The official A2A client (a2a-sdk) against a live ``serve``: JSON-RPC and HTTP+JSON in 1.0 and 0.3, and gRPC."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError, UnsupportedOperationError

from queueapp.model import new_id
from tests.protocol.conftest import official_client, user_message

COMBOS = [("JSONRPC", "1.0"), ("HTTP+JSON", "1.0"), ("JSONRPC", "0.3"), ("HTTP+JSON", "0.3"), ("GRPC", "1.0")]
pytestmark = pytest.mark.parametrize("binding,version", COMBOS, ids=[f"{b}-{v}" for b, v in COMBOS])

S = pb.TaskState


async def send(client, message: pb.Message, **configuration) -> list[pb.StreamResponse]:
    request = pb.SendMessageRequest(message=message, configuration=pb.SendMessageConfiguration(**configuration))
    return [event async for event in client.send_message(request)]


async def wait_for_state(client, task_id: str, states: set[int], timeout: float = 20) -> pb.Task:
    async with asyncio.timeout(timeout):
        while True:
            task = await client.get_task(pb.GetTaskRequest(id=task_id))
            if task.status.state in states:
                return task
            await asyncio.sleep(0.1)


def text_of(task: pb.Task) -> str:
    return " ".join(part.text for artifact in task.artifacts for part in artifact.parts)


async def test_blocking_send_waits_for_the_result(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=False)
    events = await send(client, user_message("hello blocking"))
    assert len(events) == 1
    task = events[0].task
    assert task.status.state == S.TASK_STATE_COMPLETED
    assert "Original input: hello blocking" in text_of(task)
    assert task.history[0].parts[0].text == "hello blocking"


async def test_non_blocking_send_returns_at_once_then_get_sees_it_finish(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=False)
    events = await send(client, user_message("sleep 1"), return_immediately=True)
    task = events[0].task
    assert task.status.state in (S.TASK_STATE_SUBMITTED, S.TASK_STATE_WORKING)
    finished = await wait_for_state(client, task.id, {S.TASK_STATE_COMPLETED})
    assert finished.status.message.parts[0].text == "Slept 1s"


async def test_multi_turn_through_input_required_and_history_length(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=False)
    first = (await send(client, user_message("ask What is your name?")))[0].task
    assert first.status.state == S.TASK_STATE_INPUT_REQUIRED
    assert first.status.message.parts[0].text == "What is your name?"
    reply = user_message("Ada", task_id=first.id, context_id=first.context_id)
    second = (await send(client, reply))[0].task
    assert second.id == first.id
    assert second.status.state == S.TASK_STATE_COMPLETED
    assert "Ada" in second.status.message.parts[0].text
    full = await client.get_task(pb.GetTaskRequest(id=first.id))
    assert [m.parts[0].text for m in full.history if m.role == pb.Role.ROLE_USER] == ["ask What is your name?", "Ada"]
    last_one = await client.get_task(pb.GetTaskRequest(id=first.id, history_length=1))
    assert len(last_one.history) == 1
    assert last_one.history[0].parts[0].text == full.history[-1].parts[0].text


async def test_cancel_a_running_task(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=False)
    task = (await send(client, user_message("sleep 30"), return_immediately=True))[0].task
    await wait_for_state(client, task.id, {S.TASK_STATE_WORKING})
    canceled = await client.cancel_task(pb.CancelTaskRequest(id=task.id))
    assert canceled.status.state == S.TASK_STATE_CANCELED
    assert (await client.get_task(pb.GetTaskRequest(id=task.id))).status.state == S.TASK_STATE_CANCELED


async def test_stream_sends_the_task_then_every_event_in_order(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=True)
    events = await send(client, user_message("chunks 3"))
    assert events[0].HasField("task")
    task_id = events[0].task.id
    chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert [c.artifact.parts[0].text for c in chunks] == ["chunk-1 ", "chunk-2 ", "chunk-3 "]
    assert [c.append for c in chunks] == [False, True, True]
    assert chunks[-1].last_chunk
    assert all(c.task_id == task_id for c in chunks)
    assert events[-1].status_update.status.state == S.TASK_STATE_COMPLETED


async def test_subscribe_follows_a_running_task_to_its_end(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=True)
    sender = await official_client(live.url, binding, version, streaming=False)
    task = (await send(sender, user_message("sleep 2"), return_immediately=True))[0].task
    events = [e async for e in client.subscribe(pb.SubscribeToTaskRequest(id=task.id))]
    assert events[0].task.id == task.id
    assert events[-1].status_update.status.state == S.TASK_STATE_COMPLETED
    progress = [e.status_update.status.message.parts[0].text for e in events[1:-1] if e.status_update.status.HasField("message")]
    assert progress and all(text.startswith("Working") for text in progress)


async def test_push_config_create_get_list_delete(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=False)
    task = (await send(client, user_message("hello push")))[0].task
    config = pb.TaskPushNotificationConfig(task_id=task.id, id="hook-1", url="http://127.0.0.1:9/hook", token="secret-token")
    created = await client.create_task_push_notification_config(config)
    assert (created.id, created.url, created.token) == ("hook-1", "http://127.0.0.1:9/hook", "secret-token")
    got = await client.get_task_push_notification_config(pb.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"))
    assert got.url == "http://127.0.0.1:9/hook"
    if (binding, version) == ("HTTP+JSON", "0.3"):
        # The SDK's 0.3 REST client has no list or delete; its routes are checked directly.
        base = f"{live.url}/v1/tasks/{task.id}/pushNotificationConfigs"
        listed_ids = [c["name"].rsplit("/", 1)[-1] for c in httpx.get(base, headers={"A2A-Version": "0.3"}).json()["configs"]]
        assert listed_ids == ["hook-1"]
        assert httpx.delete(f"{base}/hook-1", headers={"A2A-Version": "0.3"}).status_code == 200
        assert httpx.get(base, headers={"A2A-Version": "0.3"}).json().get("configs", []) == []
        return
    listed = await client.list_task_push_notification_configs(pb.ListTaskPushNotificationConfigsRequest(task_id=task.id))
    assert [c.id for c in listed.configs] == ["hook-1"]
    await client.delete_task_push_notification_config(pb.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"))
    listed = await client.list_task_push_notification_configs(pb.ListTaskPushNotificationConfigsRequest(task_id=task.id))
    assert list(listed.configs) == []


async def test_typed_errors_for_unknown_and_finished_tasks(live, binding, version):
    client = await official_client(live.url, binding, version, streaming=False)
    with pytest.raises(TaskNotFoundError):
        await client.get_task(pb.GetTaskRequest(id=new_id()))
    with pytest.raises(TaskNotFoundError):
        await send(client, user_message("hello", task_id=new_id()))
    done = (await send(client, user_message("hello done")))[0].task
    with pytest.raises(TaskNotCancelableError):
        await client.cancel_task(pb.CancelTaskRequest(id=done.id))
    with pytest.raises(UnsupportedOperationError):
        await send(client, user_message("more", task_id=done.id, context_id=done.context_id))
