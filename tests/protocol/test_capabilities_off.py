"""With streaming and push notifications turned off, the card says so and the methods refuse."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from queueapp.model import new_id
from tests.protocol.conftest import Live, start_live


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
