"""With streaming and push notifications turned off, the card says so and the methods refuse."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.types import a2a_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from queueapp.model import new_id
from tests.protocol.conftest import Live, start_live, user_message


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-caps-") as folder:
        server = start_live(Path(folder), A2A_CAPABILITIES_STREAMING="false", A2A_CAPABILITIES_PUSH_NOTIFICATIONS="false")
        yield server
        server.serve.stop()
        server.redis.stop()


def message() -> dict:
    return {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "hi"}]}


def test_card_shows_the_capabilities_off(live):
    capabilities = httpx.get(f"{live.url}/.well-known/agent-card.json").json()["capabilities"]
    assert capabilities["streaming"] is False and capabilities["pushNotifications"] is False


def test_streaming_methods_are_unsupported(live):
    assert live.rpc("SendStreamingMessage", {"message": message()}).json()["error"]["code"] == -32004
    task = live.rpc("SendMessage", {"message": message(), "configuration": {"returnImmediately": True}}).json()["result"]["task"]
    assert live.rpc("SubscribeToTask", {"id": task["id"]}).json()["error"]["code"] == -32004
    response = httpx.post(f"{live.url}/message:stream", json={"message": message()}, headers={"A2A-Version": "1.0"})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "UNSUPPORTED_OPERATION"


def test_push_methods_are_not_supported(live):
    task = live.rpc("SendMessage", {"message": message()}).json()["result"]["task"]
    for method, params in [
        ("CreateTaskPushNotificationConfig", {"taskId": task["id"], "url": "https://example.com/hook"}),
        ("GetTaskPushNotificationConfig", {"taskId": task["id"], "id": "x"}),
        ("ListTaskPushNotificationConfigs", {"taskId": task["id"]}),
        ("DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": "x"}),
        ("SendMessage", {"message": message(), "configuration": {"taskPushNotificationConfig": {"url": "https://example.com/hook"}}}),
    ]:
        assert live.rpc(method, params).json()["error"]["code"] == -32003, method
    v03 = {"jsonrpc": "2.0", "id": 1, "method": "tasks/pushNotificationConfig/list", "params": {"id": task["id"]}}
    assert httpx.post(f"{live.url}/a2a", json=v03).json()["error"]["code"] == -32003


async def test_over_grpc_both_are_unimplemented_as_the_spec_says(live):
    async with grpc.aio.insecure_channel(live.serve.grpc_target) as channel:
        service = a2a_pb2_grpc.A2AServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as streaming:
            await service.SendStreamingMessage(pb.SendMessageRequest(message=user_message("hi"))).read()
        task = (await service.SendMessage(pb.SendMessageRequest(message=user_message("hi")))).task
        config = pb.TaskPushNotificationConfig(task_id=task.id, url="http://127.0.0.1:9/hook")
        with pytest.raises(grpc.aio.AioRpcError) as push:
            await service.CreateTaskPushNotificationConfig(config)
    for caught, reason in ((streaming, "UNSUPPORTED_OPERATION"), (push, "PUSH_NOTIFICATION_NOT_SUPPORTED")):
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        info = error_details_pb2.ErrorInfo()
        rpc_status.from_call(caught.value).details[0].Unpack(info)
        assert info.reason == reason
