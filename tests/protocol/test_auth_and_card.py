"""Auth (bearer tokens and API keys), the agent card and its caching headers."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import ParseDict

from queueapp.model import new_id
from tests.protocol.conftest import Live, start_live

TOKEN, KEY = "alice-secret-token", "ci-secret-key"


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-auth-") as folder:
        server = start_live(
            Path(folder),
            A2A_AUTH_TOKENS=f"alice:{TOKEN}",
            A2A_AUTH_API_KEYS=f"ci:{KEY}",
            A2A_PUSH_ALLOW_PRIVATE="false",
            A2A_PUBLIC_URL="https://agents.example.com",
        )
        yield server
        server.serve.stop()
        server.redis.stop()


def send(live, headers: dict) -> httpx.Response:
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "who am I"}]}}
    return live.rpc("SendMessage", params, headers=headers)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_missing_or_wrong_credentials_get_401(live, headers):
    response = send(live, headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["data"][0]["reason"] == "UNAUTHENTICATED"
    rest = httpx.get(f"{live.url}/tasks", headers={"A2A-Version": "1.0", **headers})
    assert rest.status_code == 401 and "WWW-Authenticate" in rest.headers
    v03 = httpx.get(f"{live.url}/v1/tasks", headers=headers)
    assert v03.status_code == 401 and "WWW-Authenticate" in v03.headers
    assert (v03.json()["type"], v03.json()["code"]) == ("UnauthenticatedError", -32600)


def test_valid_credentials_store_the_identity_on_the_task(live):
    by_token = send(live, {"Authorization": f"Bearer {TOKEN}"}).json()["result"]["task"]
    by_key = send(live, {"X-API-Key": KEY}).json()["result"]["task"]
    redis = live.redis.client()
    assert redis.hget(f"a2a:deadletter:{by_token['id']}", "identity") == "alice"
    assert redis.hget(f"a2a:deadletter:{by_key['id']}", "identity") == "ci"


def test_card_and_health_stay_public(live):
    assert httpx.get(f"{live.url}/health").status_code == 200
    assert httpx.get(f"{live.url}/.well-known/agent-card.json").status_code == 200


def test_card_declares_the_schemes_and_public_url(live):
    card = httpx.get(f"{live.url}/.well-known/agent-card.json").json()
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"] == {"location": "header", "name": "X-API-Key", "description": "A key from A2A_AUTH_API_KEYS"}
    assert {next(iter(r["schemes"])) for r in card["securityRequirements"]} == {"bearer", "apiKey"}
    urls = {(i["protocolBinding"], i["protocolVersion"]): i["url"] for i in card["supportedInterfaces"]}
    assert urls == {
        ("JSONRPC", "1.0"): "https://agents.example.com/a2a",
        ("HTTP+JSON", "1.0"): "https://agents.example.com",
        ("JSONRPC", "0.3"): "https://agents.example.com/a2a",
        ("HTTP+JSON", "0.3"): "https://agents.example.com",
        ("GRPC", "1.0"): f"agents.example.com:{live.serve.env['A2A_GRPC_PORT']}",  # the card's host, the gRPC port
    }
    parsed = ParseDict(card, pb.AgentCard(), ignore_unknown_fields=True)  # a valid 1.0 card
    assert parsed.name and parsed.version and parsed.capabilities.streaming and parsed.skills


def test_card_caching_headers_and_304(live):
    first = httpx.get(f"{live.url}/.well-known/agent-card.json")
    etag = first.headers["ETag"]
    assert "max-age=" in first.headers["Cache-Control"]
    again = httpx.get(f"{live.url}/.well-known/agent-card.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    stale = httpx.get(f"{live.url}/.well-known/agent-card.json", headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.json()["name"]


def test_private_webhook_is_refused_unless_allowed(live):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    task = send(live, headers).json()["result"]["task"]
    error = live.rpc("CreateTaskPushNotificationConfig", {"taskId": task["id"], "url": "http://127.0.0.1:8080/hook"}, headers=headers).json()["error"]
    assert error["code"] == -32602 and "A2A_PUSH_ALLOW_PRIVATE" in error["message"]
