"""The demo client's gRPC transport: the a2a-sdk's own gRPC client, in A2A 1.0.

It reads the agent card over HTTP (``/health`` too, as the JSON-RPC client does), dials
the card's ``GRPC`` interface with the SDK's ``ClientFactory``, and hands the rest of the
demo the same 1.0 JSON shapes as :class:`~queueapp.client.rpc.A2AClient`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict, ParseDict

from queueapp.client.rpc import A2AClient, ClientError, RetryCallback, user_message
from queueapp.model import Json


class GrpcA2AClient:
    """The calls the demo makes, over the SDK's gRPC client."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0):
        self.http = A2AClient(url, token=token, timeout=timeout)
        self.context = ClientCallContext(service_parameters={"authorization": f"Bearer {token}"}) if token else None
        self.clients: dict[bool, Any] = {}  # by streaming: the SDK client sends without streaming when told so

    async def __aenter__(self) -> GrpcA2AClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.http.aclose()

    async def wait_healthy(self, attempts: int = 30, interval: float = 1.0, on_retry: RetryCallback | None = None) -> None:
        await self.http.wait_healthy(attempts, interval, on_retry)
        card = await A2ACardResolver(self.http.http, self.http.base_url).get_agent_card()
        grpc_interfaces = [i for i in card.supported_interfaces if i.protocol_binding == "GRPC"]
        if not grpc_interfaces:
            raise ClientError(f"The agent card at {self.http.base_url} declares no gRPC interface (is A2A_GRPC_PORT 0 on the server?)")
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(grpc_interfaces)
        for streaming in (False, True):
            config = ClientConfig(streaming=streaming, supported_protocol_bindings=["GRPC"], grpc_channel_factory=grpc.aio.insecure_channel)
            self.clients[streaming] = ClientFactory(config).create(card)

    async def _events(self, streaming: bool, request: pb.SendMessageRequest, what: str) -> AsyncIterator[Json]:
        try:
            async for event in self.clients[streaming].send_message(request, context=self.context):
                yield MessageToDict(event)
        except (A2AError, A2AClientError) as exc:
            raise ClientError(f"{what} failed over gRPC: {exc}") from None

    async def send(self, text: str, context_id: str | None = None) -> Json:
        """Submit a message without waiting; returns ``{"task": ...}`` or ``{"message": ...}``."""
        message = ParseDict(user_message(text, "1.0", context_id), pb.Message())
        request = pb.SendMessageRequest(message=message, configuration=pb.SendMessageConfiguration(return_immediately=True))
        async for event in self._events(False, request, "SendMessage"):
            return event
        raise ClientError("SendMessage over gRPC returned nothing")

    async def get_task(self, task_id: str) -> Json:
        try:
            return MessageToDict(await self.clients[False].get_task(pb.GetTaskRequest(id=task_id), context=self.context))
        except (A2AError, A2AClientError) as exc:
            raise ClientError(f"GetTask failed over gRPC: {exc}") from None

    def stream(self, text: str, context_id: str | None = None) -> AsyncIterator[Json]:
        message = ParseDict(user_message(text, "1.0", context_id), pb.Message())
        return self._events(True, pb.SendMessageRequest(message=message), "SendStreamingMessage")

    async def subscribe(self, task_id: str) -> AsyncIterator[Json]:
        try:
            async for event in self.clients[True].subscribe(pb.SubscribeToTaskRequest(id=task_id), context=self.context):
                yield MessageToDict(event)
        except (A2AError, A2AClientError) as exc:
            raise ClientError(f"SubscribeToTask failed over gRPC: {exc}") from None


Client = A2AClient | GrpcA2AClient  # what the demo drives: the same calls, the same 1.0 shapes


def make_client(url: str, *, transport: str, protocol: str, token: str | None) -> Client:
    if transport == "grpc":
        return GrpcA2AClient(url, token=token)
    return A2AClient(url, protocol=protocol, token=token)

