"""OpenID Connect tokens through a real ``serve``: a local issuer on 127.0.0.1 with keys made
here, static tokens on at the same time, and every kind of bad token answered 401 with the
challenge on JSON-RPC and HTTP+JSON (UNAUTHENTICATED on gRPC)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.auth import AuthInterceptor, CredentialService
from a2a.types import a2a_pb2 as pb
from a2a.types import a2a_pb2_grpc

from queueapp.model import new_id
from tests.oidc_issuer import AUDIENCE, LocalIssuer, SigningKey, claims_of, hmac_with_public_key, tampered, unsigned_token
from tests.protocol.conftest import Live, start_live, user_message

STATIC = "static-secret-token"
RS, ES, STRANGER = SigningKey("RS256"), SigningKey("ES256"), SigningKey("RS256")
REFETCH_INTERVAL = 1.0


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    local = LocalIssuer(RS, ES)
    yield local
    local.close()


@pytest.fixture(scope="module")
def live(issuer) -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-oidc-") as folder:
        server = start_live(
            Path(folder),
            A2A_AUTH_TOKENS=f"ci:{STATIC}",
            A2A_AUTH_OIDC_ISSUER=issuer.issuer,
            A2A_AUTH_OIDC_AUDIENCE=AUDIENCE,
            A2A_AUTH_OIDC_REFETCH_INTERVAL=f"{REFETCH_INTERVAL}s",
        )
        yield server
        server.serve.stop()
        server.redis.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def send_rpc(live: Live, headers: dict) -> httpx.Response:
    params = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "who am I"}]}}
    return live.rpc("SendMessage", params, headers=headers)


def send_rest(live: Live, headers: dict) -> httpx.Response:
    body = {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "who am I"}]}}
    return httpx.post(f"{live.url}/message:send", json=body, headers={"A2A-Version": "1.0", **headers}, timeout=30)


def owner(live: Live, task_id: str) -> str | None:
    redis = live.redis.client()
    return redis.hget(f"a2a:active:{task_id}", "identity") or redis.hget(f"a2a:deadletter:{task_id}", "identity")


def test_serve_fetches_the_keys_at_start(live, issuer):
    """Before any token arrives (this test runs first), so a wrong issuer shows in the log at once."""
    deadline = time.monotonic() + 10
    while "Fetched the signing keys" not in live.serve.output and time.monotonic() < deadline:
        time.sleep(0.1)
    assert issuer.key_fetches == 1
    assert f"Fetched the signing keys of {issuer.issuer}, kids={','.join(sorted((RS.kid, ES.kid)))}" in live.serve.output


@pytest.mark.parametrize("key", [RS, ES], ids=["RS256", "ES256"])
def test_a_valid_token_makes_its_subject_the_task_owner(live, issuer, key):
    token = issuer.token(key, sub=f"alice-{key.alg}")
    by_rpc = send_rpc(live, bearer(token))
    assert by_rpc.status_code == 200, by_rpc.text
    assert owner(live, by_rpc.json()["result"]["task"]["id"]) == f"alice-{key.alg}"
    by_rest = send_rest(live, bearer(token))
    assert by_rest.status_code == 200, by_rest.text
    assert owner(live, by_rest.json()["task"]["id"]) == f"alice-{key.alg}"


def test_the_keys_are_fetched_once_for_all_requests(live, issuer):
    before = issuer.key_fetches
    for key in (RS, ES, RS, ES):
        assert send_rpc(live, bearer(issuer.token(key))).status_code == 200
    assert issuer.key_fetches == before  # one authenticator per process: its cache lives


def test_the_token_subject_owns_the_task_against_other_subjects_and_static_tokens(live, issuer):
    alice, bob = issuer.token(RS, sub="alice-owner"), issuer.token(ES, sub="bob-other")
    task_id = send_rpc(live, bearer(alice)).json()["result"]["task"]["id"]
    assert live.rpc("GetTask", {"id": task_id}, headers=bearer(alice)).json()["result"]["id"] == task_id
    for stranger in (bob, STATIC):
        assert live.rpc("GetTask", {"id": task_id}, headers=bearer(stranger)).json()["error"]["code"] == -32001
        rest = httpx.get(f"{live.url}/tasks/{task_id}", headers={"A2A-Version": "1.0", **bearer(stranger)})
        assert rest.status_code == 404
    # A new token of the same subject (another key, later) is the same owner.
    again = issuer.token(ES, sub="alice-owner", iat=int(time.time()) + 1)
    assert httpx.get(f"{live.url}/tasks/{task_id}", headers={"A2A-Version": "1.0", **bearer(again)}).json()["id"] == task_id


def test_static_tokens_still_work_beside_oidc(live):
    response = send_rpc(live, bearer(STATIC))
    assert owner(live, response.json()["result"]["task"]["id"]) == "ci"


def test_a_token_a_little_past_its_expiry_is_within_the_leeway(live, issuer):
    token = issuer.token(sub="late", exp=int(time.time()) - 5)
    assert owner(live, send_rpc(live, bearer(token)).json()["result"]["task"]["id"]) == "late"


def _bad_tokens(issuer: LocalIssuer) -> dict[str, tuple[str, str]]:
    """Each bad token, and the words the 401 must say about it."""
    now = int(time.time())
    valid = issuer.token(RS, sub="alice")
    return {
        "expired": (issuer.token(exp=now - 300), "has expired"),
        "not yet valid": (issuer.token(nbf=now + 300), "not valid yet"),
        "wrong audience": (issuer.token(aud="another-service"), "audience"),
        "wrong issuer": (issuer.token(iss="http://127.0.0.1:9/other"), "issuer"),
        "tampered": (tampered(valid, sub="admin"), "signature does not verify"),
        "alg none": (unsigned_token(claims_of(valid), RS.kid), "signed with 'none'"),
        "HS256 with the public key": (hmac_with_public_key(claims_of(valid), RS), "signed with 'HS256'"),
        "unknown key": (issuer.token(STRANGER), "which the issuer does not publish"),
        "not a JWT": ("x.y.z", "not a valid JWT"),
    }


BAD = ["expired", "not yet valid", "wrong audience", "wrong issuer", "tampered", "alg none", "HS256 with the public key", "unknown key", "not a JWT"]


@pytest.mark.parametrize("case", BAD)
def test_bad_tokens_get_401_with_the_challenge_on_both_bindings(live, issuer, case):
    token, reason = _bad_tokens(issuer)[case]
    rpc = send_rpc(live, bearer(token))
    assert rpc.status_code == 401
    assert rpc.headers["WWW-Authenticate"] == 'Bearer realm="a2a", error="invalid_token"'
    error = rpc.json()["error"]
    assert error["code"] == -32600 and error["data"][0]["reason"] == "UNAUTHENTICATED"
    assert reason in error["message"]
    rest = send_rest(live, bearer(token))
    assert rest.status_code == 401 and rest.headers["WWW-Authenticate"] == 'Bearer realm="a2a", error="invalid_token"'
    assert reason in rest.json()["error"]["message"]
    listing = httpx.get(f"{live.url}/v1/tasks", headers=bearer(token))  # the 0.3 binding too
    assert listing.status_code == 401 and "WWW-Authenticate" in listing.headers


def test_no_credential_gets_the_plain_challenge_and_the_ways_to_authenticate(live, issuer):
    rpc = send_rpc(live, {})
    assert rpc.status_code == 401 and rpc.headers["WWW-Authenticate"] == 'Bearer realm="a2a"'
    assert f"a token or a JWT from {issuer.issuer}" in rpc.json()["error"]["message"]
    rest = send_rest(live, {"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert rest.status_code == 401 and rest.headers["WWW-Authenticate"] == 'Bearer realm="a2a"'


def test_a_slow_issuer_does_not_hold_up_other_requests(live, issuer):
    time.sleep(REFETCH_INTERVAL + 0.2)  # so that the unknown key id below makes a fetch
    issuer.delay = 2.0  # per request: discovery and keys take 4 s, inside the 5 s limit
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(send_rpc, live, bearer(issuer.token(STRANGER)))
            time.sleep(0.3)  # the server is now waiting for the issuer
            started = time.monotonic()
            assert send_rpc(live, bearer(STATIC)).status_code == 200
            assert send_rpc(live, bearer(issuer.token(RS))).status_code == 200  # a cached key needs no fetch
            assert time.monotonic() - started < 1.5
            assert not waiting.done()
            late = waiting.result(timeout=10)
            assert late.status_code == 401, late.text
    finally:
        issuer.delay = 0.0


def test_a_rotated_key_is_accepted_after_one_refetch(live, issuer):
    assert send_rpc(live, bearer(issuer.token(RS))).status_code == 200  # RS is in the server's cache
    new_key = SigningKey("ES256")
    issuer.keys = [new_key]
    try:
        time.sleep(REFETCH_INTERVAL + 0.2)
        before = issuer.key_fetches
        response = send_rpc(live, bearer(issuer.token(new_key, sub="rotated")))
        assert response.status_code == 200, response.text
        assert owner(live, response.json()["result"]["task"]["id"]) == "rotated"
        assert issuer.key_fetches == before + 1
        time.sleep(REFETCH_INTERVAL + 0.2)
        withdrawn = send_rpc(live, bearer(issuer.token(RS)))
        assert withdrawn.status_code == 401 and "does not publish" in withdrawn.json()["error"]["message"]
    finally:
        issuer.keys = [RS, ES]
        time.sleep(REFETCH_INTERVAL + 0.2)  # so that the next unknown key id may refetch


def test_the_card_declares_every_enabled_scheme(live, issuer):
    card = httpx.get(f"{live.url}/.well-known/agent-card.json").json()
    oidc = card["securitySchemes"]["oidc"]
    assert oidc["openIdConnectSecurityScheme"]["openIdConnectUrl"] == issuer.issuer + "/.well-known/openid-configuration"
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert "apiKey" not in card["securitySchemes"]  # not configured here
    assert [next(iter(r["schemes"])) for r in card["securityRequirements"]] == ["oidc", "bearer"]
    # The 0.3 form of the same, on the 0.3 card.
    card03 = httpx.get(f"{live.url}/.well-known/agent.json").json()
    oidc03 = card03["securitySchemes"]["oidc"]
    assert oidc03["type"] == "openIdConnect" and oidc03["openIdConnectUrl"] == issuer.issuer + "/.well-known/openid-configuration"
    assert card03["security"] == [{"oidc": []}, {"bearer": []}]


class IssuedTokens(CredentialService):
    """What an application would do: hand the official client a token for the card's OIDC scheme."""

    def __init__(self, token: str):
        self.token = token

    async def get_credentials(self, security_scheme_name, context):
        return self.token if security_scheme_name == "oidc" else None


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON", "GRPC"])
async def test_the_official_client_authenticates_through_the_cards_oidc_scheme(live, issuer, binding):
    async with httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, live.url).get_agent_card()
    config = ClientConfig(streaming=False, supported_protocol_bindings=[binding], grpc_channel_factory=grpc.aio.insecure_channel)
    client = ClientFactory(config).create(
        card, interceptors=[AuthInterceptor(IssuedTokens(issuer.token(ES, sub=f"sdk-{binding}")))]
    )
    try:
        events = [event async for event in client.send_message(pb.SendMessageRequest(message=user_message("hello")))]
    finally:
        await client.close()
    task = events[-1].task
    assert task.status.state == pb.TaskState.TASK_STATE_COMPLETED
    assert owner(live, task.id) == f"sdk-{binding}"


@pytest.mark.parametrize("case", ["expired", "tampered", "unknown key"])
async def test_grpc_refuses_bad_tokens_as_unauthenticated(live, issuer, case):
    token, reason = _bad_tokens(issuer)[case]
    async with grpc.aio.insecure_channel(live.serve.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a2a_pb2_grpc.A2AServiceStub(channel).SendMessage(pb.SendMessageRequest(message=user_message("hi")), metadata=(("authorization", f"Bearer {token}"),))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED and reason in caught.value.details()


def test_an_issuer_that_does_not_answer_gets_503_soon_not_a_hang():
    silent = LocalIssuer(SigningKey("ES256"))
    silent.delay = 30.0
    with tempfile.TemporaryDirectory(prefix="a2a-oidc-down-") as folder:
        server = start_live(Path(folder), A2A_AUTH_OIDC_ISSUER=silent.issuer, A2A_AUTH_OIDC_AUDIENCE=AUDIENCE, A2A_AUTH_OIDC_TIMEOUT="1s")
        try:
            token = silent.token()
            started = time.monotonic()
            rpc = send_rpc(server, bearer(token))
            assert time.monotonic() - started < 5
            error = rpc.json()["error"]
            assert error["code"] == -32603 and error["data"][0]["reason"] == "IDENTITY_PROVIDER_UNAVAILABLE"
            assert silent.issuer in error["message"] and "retry shortly" in error["message"]
            started = time.monotonic()
            rest = send_rest(server, bearer(token))  # within the refetch interval: answered at once
            assert rest.status_code == 503 and rest.json()["error"]["status"] == "UNAVAILABLE"
            assert time.monotonic() - started < 1
            assert f"The identity provider {silent.issuer} did not answer within 1s; bearer JWTs are answered 503" in server.serve.output
        finally:
            server.serve.stop()
            server.redis.stop()
            silent.close()
