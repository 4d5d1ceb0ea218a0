"""OpenID Connect tokens, checked against a local issuer on 127.0.0.1: key caching, refetch
limits, an issuer that is down or slow, and the settings. The endpoint's answers to each kind
of bad token are in tests/protocol/test_oidc_endpoint.py."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from queueapp.auth import Authenticator, AuthError, AuthUnavailableError
from queueapp.config import ConfigError, load
from queueapp.oidc import IssuerUnavailable, OidcVerifier, TokenRejected
from tests.oidc_issuer import AUDIENCE, LocalIssuer, SigningKey, make_token


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey("RS256")


@pytest.fixture
def issuer(rsa_key) -> Iterator[LocalIssuer]:
    local = LocalIssuer(rsa_key)
    yield local
    local.close()


def verifier(issuer_url: str, **overrides) -> OidcVerifier:
    options = {"leeway": 5.0, "jwks_ttl": 600.0, "refetch_interval": 30.0, "timeout": 2.0, **overrides}
    claim = options.pop("identity_claim", "sub")
    return OidcVerifier(issuer_url, (AUDIENCE,), claim, **options)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/realm"


async def test_keys_are_fetched_once_and_reused(issuer, rsa_key):
    check = verifier(issuer.issuer)
    for subject in ("alice", "bob", "carol"):
        assert await check.verify(issuer.token(sub=subject)) == subject
    assert issuer.hits["/realm/.well-known/openid-configuration"] == 1
    assert issuer.key_fetches == 1


async def test_unknown_key_ids_refetch_at_most_once_per_interval(issuer, rsa_key):
    check = verifier(issuer.issuer, refetch_interval=30.0)
    await check.verify(issuer.token())
    stranger = SigningKey("RS256", private=rsa_key.private)  # same key, a kid nobody publishes
    for _ in range(20):
        stranger.kid = f"made-up-{time.monotonic_ns()}"
        with pytest.raises(TokenRejected, match="which the issuer does not publish"):
            await check.verify(issuer.token(stranger))
    assert issuer.key_fetches == 1  # the first fetch was less than 30 s ago: no refetch at all


async def test_a_rotated_key_is_picked_up_by_one_refetch(issuer, rsa_key):
    check = verifier(issuer.issuer, refetch_interval=0.2)
    assert await check.verify(issuer.token(sub="before")) == "before"
    new_key = SigningKey("ES256")
    issuer.keys = [new_key]
    await asyncio.sleep(0.25)
    assert await check.verify(issuer.token(new_key, sub="after")) == "after"
    assert issuer.key_fetches == 2
    await asyncio.sleep(0.25)
    with pytest.raises(TokenRejected, match="does not publish"):  # the old key is withdrawn
        await check.verify(issuer.token(rsa_key))


async def test_concurrent_requests_share_one_fetch(issuer):
    issuer.delay = 0.3
    check = verifier(issuer.issuer)
    results = await asyncio.gather(*(check.verify(issuer.token(sub=f"u{i}")) for i in range(10)))
    assert results == [f"u{i}" for i in range(10)]
    assert issuer.key_fetches == 1


async def test_an_unreachable_issuer_fails_fast_and_is_not_retried_at_once():
    check = verifier(closed_port_url(), refetch_interval=30.0)
    token = make_token(SigningKey("ES256"), check.issuer)
    started = time.monotonic()
    with pytest.raises(IssuerUnavailable, match="could not be fetched"):
        await check.verify(token)
    with pytest.raises(IssuerUnavailable, match="at the last attempt"):
        await check.verify(token)
    assert time.monotonic() - started < 2


async def test_a_silent_issuer_is_given_up_after_the_timeout(issuer):
    issuer.delay = 5.0
    check = verifier(issuer.issuer, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(IssuerUnavailable, match="did not answer within 0.5s|could not be fetched"):
        await check.verify(issuer.token())
    assert time.monotonic() - started < 2


async def test_keys_outlive_their_ttl_while_the_issuer_is_down(issuer):
    check = verifier(issuer.issuer, jwks_ttl=0.2, refetch_interval=0.0, timeout=0.5)
    assert await check.verify(issuer.token(sub="first")) == "first"
    issuer.close()
    await asyncio.sleep(0.25)
    assert await check.verify(issuer.token(sub="second")) == "second"  # kept, with a warning logged


async def test_a_discovery_document_naming_another_issuer_is_refused(issuer):
    issuer.issuer_in_document = "https://impostor.invalid"
    with pytest.raises(IssuerUnavailable, match="names the issuer 'https://impostor.invalid'"):
        await verifier(issuer.issuer).verify(issuer.token())


async def test_the_identity_claim_is_configurable(issuer):
    check = verifier(issuer.issuer, identity_claim="email")
    assert await check.verify(issuer.token(email="alice@corp.test")) == "alice@corp.test"
    with pytest.raises(TokenRejected, match="no 'email' claim"):
        await check.verify(issuer.token())


@pytest.mark.parametrize("missing", ["exp", "aud", "iss"])
async def test_tokens_without_the_basic_claims_are_refused(issuer, missing):
    with pytest.raises(TokenRejected, match=f"lacks a required claim.*{missing}"):
        await verifier(issuer.issuer).verify(issuer.token(**{missing: None}))


async def test_static_tokens_and_oidc_together(issuer):
    config = load({"A2A_AUTH_TOKENS": "ci:static-secret", "A2A_AUTH_OIDC_ISSUER": issuer.issuer, "A2A_AUTH_OIDC_AUDIENCE": f"other,{AUDIENCE}"})
    auth = Authenticator.from_config(config)
    assert await auth.authenticate({"Authorization": "Bearer static-secret"}) == "ci"
    assert await auth.authenticate({"authorization": "Bearer " + issuer.token(sub="alice")}) == "alice"
    with pytest.raises(AuthError, match="signature does not verify"):
        await auth.authenticate({"Authorization": "Bearer " + issuer.token(sub="alice")[:-4] + "AAAA"})
    with pytest.raises(AuthError, match="^The credential is not valid"):
        await auth.authenticate({"Authorization": "Bearer not-a-jwt"})
    with pytest.raises(AuthError, match="a token or a JWT from http://127.0.0.1"):
        await auth.authenticate({})
    assert issuer.key_fetches == 1


async def test_the_authenticator_reports_an_unreachable_issuer_as_unavailable():
    url = closed_port_url()
    auth = Authenticator.from_config(load({"A2A_AUTH_OIDC_ISSUER": url, "A2A_AUTH_OIDC_AUDIENCE": AUDIENCE}))
    with pytest.raises(AuthUnavailableError, match=url):
        await auth.authenticate({"Authorization": "Bearer " + make_token(SigningKey("ES256"), url)})
    with pytest.raises(AuthError, match="not a valid JWT"):  # garbage is refused without asking the issuer
        await auth.authenticate({"Authorization": "Bearer a.b.c"})


@pytest.mark.parametrize(
    "environ,message",
    [
        ({"A2A_AUTH_OIDC_ISSUER": "idp.corp.test"}, "^A2A_AUTH_OIDC_ISSUER='idp.corp.test' is invalid: expected the issuer URL"),
        ({"A2A_AUTH_OIDC_ISSUER": "http://idp.corp.test"}, r"is invalid: .*http:// only on a loopback host"),
        ({"A2A_AUTH_OIDC_ISSUER": "https://idp.corp.test/?x=1"}, "^A2A_AUTH_OIDC_ISSUER='https://idp.corp.test/.x=1' is invalid"),
        ({"A2A_AUTH_OIDC_ISSUER": "https://idp.corp.test"}, "^A2A_AUTH_OIDC_AUDIENCE is required when A2A_AUTH_OIDC_ISSUER is set"),
        ({"A2A_AUTH_OIDC_LEEWAY": "1h"}, "^A2A_AUTH_OIDC_LEEWAY='1h' is invalid: expected a duration from 0 to 5m"),
        ({"A2A_AUTH_OIDC_IDENTITY_CLAIM": " "}, "^A2A_AUTH_OIDC_IDENTITY_CLAIM=' ' is invalid"),
        ({"A2A_AUTH_OIDC_TIMEOUT": "0"}, "^A2A_AUTH_OIDC_TIMEOUT='0' is invalid"),
    ],
)
def test_bad_oidc_settings_stop_start_up_with_one_line(environ, message):
    with pytest.raises(ConfigError, match=message) as info:
        load({"A2A_AUTH_OIDC_AUDIENCE": AUDIENCE, **environ} if "AUDIENCE is required" not in message else environ)
    assert "\n" not in str(info.value)


def test_good_oidc_settings():
    config = load({"A2A_AUTH_OIDC_ISSUER": "https://idp.corp.test/realms/agents", "A2A_AUTH_OIDC_AUDIENCE": "a2a, a2a-dev"})
    check = OidcVerifier.from_config(config)
    assert check.audience == ("a2a", "a2a-dev") and check.identity_claim == "sub" and check.leeway == 30
    assert check.discovery_url == "https://idp.corp.test/realms/agents/.well-known/openid-configuration"
    assert OidcVerifier.from_config(load({})) is None
