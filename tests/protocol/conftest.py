"""Fixtures for the endpoint tests: a live ``serve`` on a redis-server of the module's own.

Starting ``serve`` takes a few seconds, so each test module shares one server (started
with the settings that module needs); tests keep apart by using their own contexts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb

from queueapp.model import new_id
from tests.support import RedisServer, ServeProcess, base_env


class Live:
    """A running server and the Redis it uses."""

    def __init__(self, redis: RedisServer, serve: ServeProcess):
        self.redis = redis
        self.serve = serve
        self.url = serve.url

    def rpc(self, method: str, params: dict | None = None, *, version: str | None = "1.0", request_id: object = 1, headers: dict | None = None) -> httpx.Response:
        """A raw JSON-RPC call to /a2a."""
        sent = dict(headers or {})
        if version:
            sent["A2A-Version"] = version
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        return httpx.post(f"{self.url}/a2a", json=body, headers=sent, timeout=30)


def start_live(tmp: Path, **env: str) -> Live:
    redis = RedisServer().start()
    settings = {"A2A_AGENT": "demo", "A2A_PUSH_ALLOW_PRIVATE": "true", "A2A_BLOCKING_TIMEOUT": "20s", "A2A_SSE_KEEPALIVE": "1s", **env}
    serve = ServeProcess(base_env(redis.url, str(tmp / "data"), **settings), tmp / "serve.log")
    serve.start()
    return Live(redis, serve)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-protocol-") as folder:
        server = start_live(Path(folder))
        yield server
        server.serve.stop()
        server.redis.stop()


def user_message(text: str, *, task_id: str = "", context_id: str = "", message_id: str = "") -> pb.Message:
    return pb.Message(
        message_id=message_id or new_id(), role=pb.Role.ROLE_USER, parts=[pb.Part(text=text)], task_id=task_id, context_id=context_id
    )


async def official_client(url: str, binding: str, version: str, *, streaming: bool = True):
    """The SDK's own client, held to one binding and one protocol version of our card."""
    async with httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
    chosen = [i for i in card.supported_interfaces if i.protocol_binding == binding and i.protocol_version == version]
    assert chosen, f"the card offers no {binding} {version} interface"
    del card.supported_interfaces[:]
    card.supported_interfaces.extend(chosen)
    config = ClientConfig(streaming=streaming, supported_protocol_bindings=[binding], grpc_channel_factory=grpc.aio.insecure_channel)
    return ClientFactory(config).create(card)
