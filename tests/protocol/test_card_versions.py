"""The card in both shapes: 1.0 at agent-card.json (1.0 fields only), 0.3 at agent.json; both read by the SDK."""

from __future__ import annotations

import email.utils

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.compat.v0_3 import types as t03
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import ParseDict

from tests.protocol.conftest import user_message

V03_ONLY = ("url", "preferredTransport", "protocolVersion", "additionalInterfaces", "supportsAuthenticatedExtendedCard")


def test_the_1_0_card_holds_only_1_0_fields(live):
    card = httpx.get(f"{live.url}/.well-known/agent-card.json").json()
    assert not [key for key in V03_ONLY if key in card]
    assert "stateTransitionHistory" not in card["capabilities"]
    ParseDict(card, pb.AgentCard())  # the 1.0 AgentCard message, unknown fields refused
    assert {(i["protocolBinding"], i["protocolVersion"]) for i in card["supportedInterfaces"]} >= {("JSONRPC", "1.0"), ("HTTP+JSON", "0.3")}


@pytest.mark.parametrize("how", ["path", "header"])
def test_the_0_3_card_is_what_a_0_3_client_validates(live, how):
    if how == "path":
        response = httpx.get(f"{live.url}/.well-known/agent.json")
    else:
        response = httpx.get(f"{live.url}/.well-known/agent-card.json", headers={"A2A-Version": "0.3"})
    card = t03.AgentCard.model_validate(response.json())  # what the 0.3 SDK's resolver does
    assert card.url == f"{live.url}/a2a" and card.preferred_transport == "JSONRPC"
    assert [(i.transport, i.url) for i in card.additional_interfaces] == [("HTTP+JSON", live.url)]
    assert "supportedInterfaces" not in response.json()
    assert "A2A-Version" in response.headers["Vary"]


def test_both_cards_carry_last_modified_and_keep_it(live):
    first = httpx.get(f"{live.url}/.well-known/agent-card.json")
    again = httpx.get(f"{live.url}/.well-known/agent.json")
    stamp = email.utils.parsedate_to_datetime(first.headers["Last-Modified"])
    assert stamp.tzinfo is not None
    assert again.headers["Last-Modified"] == first.headers["Last-Modified"]
    assert first.headers["ETag"] != again.headers["ETag"]


@pytest.mark.parametrize("path,version", [("/.well-known/agent-card.json", "1.0"), ("/.well-known/agent.json", "0.3")])
async def test_the_sdk_client_reads_each_card_and_talks_in_its_version(live, path, version):
    async with httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, live.url, agent_card_path=path).get_agent_card()
    assert card.supported_interfaces[0].protocol_version == version
    client = ClientFactory(ClientConfig(streaming=False, supported_protocol_bindings=["JSONRPC"])).create(card)
    events = [event async for event in client.send_message(pb.SendMessageRequest(message=user_message(f"hello {version}")))]
    assert events[0].task.status.state == pb.TaskState.TASK_STATE_COMPLETED
    assert events[0].task.history[0].parts[0].text == f"hello {version}"
