"""Bearer JWTs from an OpenID Connect provider, checked against the issuer's published keys.

The issuer's discovery document (``{issuer}/.well-known/openid-configuration``) names its
key set (``jwks_uri``). Keys are fetched at start (or first use) and kept for ``A2A_AUTH_OIDC_JWKS_TTL``;
a token naming a key the cache does not hold makes one refetch, so a rotated key is picked
up at once. Fetches of any kind are at most one per ``A2A_AUTH_OIDC_REFETCH_INTERVAL``, which
bounds what a flood of made-up key ids, or an issuer that is down, can cost: requests in
between are answered at once from what is known.

PyJWT does every check (signature, ``exp``, ``nbf``, ``iat``, ``iss``, ``aud``); each key is
bound to its own algorithm, and only RS256 and ES256 are accepted, so neither ``none`` nor an
HMAC signed with the public key can pass. PyJWT's own ``PyJWKClient`` is not used because it
fetches with blocking ``urllib`` and refetches on every unknown key id; here fetches are
awaited on the event loop through httpx, with a time limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx
import jwt

from queueapp.config import Config

log = logging.getLogger("queueapp.auth")

ALGORITHMS = ("RS256", "ES256")
DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 512 * 1024  # a key set is a few KB; anything near this is not one


class TokenRejected(Exception):
    """The token is not one this server accepts; the message says why (answered 401)."""


class IssuerUnavailable(Exception):
    """The issuer's keys cannot be had right now, so the token cannot be checked (answered 503)."""


def discovery_url(issuer: str) -> str:
    # OpenID Connect Discovery 1.0, section 4: a trailing slash of the issuer is dropped.
    return issuer.rstrip("/") + DISCOVERY_PATH


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class OidcVerifier:
    """Checks tokens of one issuer for the configured audiences, with that issuer's keys cached."""

    def __init__(self, issuer: str, audience: tuple[str, ...], identity_claim: str, *, leeway: float, jwks_ttl: float, refetch_interval: float, timeout: float):
        self.issuer = issuer
        self.audience = audience
        self.identity_claim = identity_claim
        self.leeway = leeway
        self.jwks_ttl = jwks_ttl
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self.signing_keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last successful fetch
        self._attempted_at: float | None = None  # ... and of the last attempt, successful or not
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @classmethod
    def from_config(cls, config: Config) -> OidcVerifier | None:
        if not config.auth_oidc_issuer:
            return None
        return cls(
            config.auth_oidc_issuer,
            tuple(config.auth_oidc_audience),
            config.auth_oidc_identity_claim,
            leeway=config.auth_oidc_leeway,
            jwks_ttl=config.auth_oidc_jwks_ttl,
            refetch_interval=config.auth_oidc_refetch_interval,
            timeout=config.auth_oidc_timeout,
        )

    @property
    def discovery_url(self) -> str:
        return discovery_url(self.issuer)

    async def prefetch(self) -> None:
        """Fetch the keys now (``serve`` does at start), so a wrong issuer shows in the log at once."""
        try:
            await self._refresh(stale_ok=False)
        except IssuerUnavailable as exc:
            log.warning("%s; bearer JWTs are answered 503 until it can be reached", exc)

    async def verify(self, token: str) -> str:
        """The identity the token names. Raises :class:`TokenRejected` or :class:`IssuerUnavailable`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("The bearer token is not a valid JWT.") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRejected(f"The token is signed with {alg!r}; this server accepts {' and '.join(ALGORITHMS)}.")
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=list(self.audience),
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(_reason(exc)) from None
        identity = claims.get(self.identity_claim)
        if not isinstance(identity, str) or not identity:
            raise TokenRejected(f"The token has no {self.identity_claim!r} claim naming the caller.")
        return identity

    async def _key(self, kid: Any) -> jwt.PyJWK:
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("The token names no signing key (kid).")
        if self._fetched_at is None or time.monotonic() - self._fetched_at >= self.jwks_ttl:
            await self._refresh(stale_ok=self._fetched_at is not None)
        if kid not in self.signing_keys:
            await self._refresh(stale_ok=False, missing=kid)
        if kid not in self.signing_keys:
            raise TokenRejected(f"The token is signed with key {kid!r}, which the issuer does not publish.")
        return self.signing_keys[kid]

    async def _refresh(self, *, stale_ok: bool, missing: str | None = None) -> None:
        """Fetch the key set, once per refetch interval; concurrent callers share one fetch."""
        attempted = self._attempted_at
        async with self._loop_lock():
            if self._attempted_at != attempted and (missing is None or missing in self.signing_keys):
                return  # someone else fetched while this caller waited
            if self._attempted_at is not None and time.monotonic() - self._attempted_at < self.refetch_interval:
                if self._fetched_at is None:
                    raise IssuerUnavailable(f"The keys of the identity provider {self.issuer} could not be fetched at the last attempt")
                return  # rate-limited: answer from the keys already known
            self._attempted_at = time.monotonic()
            try:
                self.signing_keys = await self._fetch_keys()
            except IssuerUnavailable as exc:
                if stale_ok:
                    log.warning("%s; keeping the %d keys fetched before", exc, len(self.signing_keys))
                    return
                raise
            self._fetched_at = time.monotonic()
            log.info("Fetched the signing keys of %s, kids=%s", self.issuer, ",".join(sorted(self.signing_keys)) or "none")

    def _loop_lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; tests and commands may run several in turn.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        try:
            async with asyncio.timeout(self.timeout), httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                discovery = await _get_json(client, self.discovery_url)
                if discovery.get("issuer") != self.issuer:
                    raise ValueError(f"its discovery document names the issuer {discovery.get('issuer')!r}, not {self.issuer!r}")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                    raise ValueError("its discovery document has no jwks_uri")
                return _signing_keys(await _get_json(client, jwks_uri))
        except TimeoutError:
            raise IssuerUnavailable(f"The identity provider {self.issuer} did not answer within {self.timeout:g}s") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise IssuerUnavailable(f"The keys of the identity provider {self.issuer} could not be fetched: {exc}") from None


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ValueError(f"GET {url} answered {response.status_code}")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"GET {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError(f"GET {url} did not answer JSON") from None
    if not isinstance(document, dict):
        raise ValueError(f"GET {url} did not answer a JSON object")
    return document


def _signing_keys(jwks: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The keys of a JWK set that can sign with an accepted algorithm, by key id.

    Encryption keys, keys for other algorithms and keys PyJWT cannot read are left out one
    by one, so that one odd key does not hide the others.
    """
    keys: dict[str, jwt.PyJWK] = {}
    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the key set has no 'keys' list")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


def _reason(exc: jwt.InvalidTokenError) -> str:
    """A sentence for the client saying which check the token failed."""
    reasons: list[tuple[type[jwt.InvalidTokenError], str]] = [
        (jwt.ExpiredSignatureError, "The token has expired."),
        (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat is in the future)."),
        (jwt.InvalidAudienceError, "The token is not meant for this server: its audience (aud) is not accepted."),
        (jwt.InvalidIssuerError, "The token was not issued by the configured issuer (iss)."),
        (jwt.InvalidSignatureError, "The token's signature does not verify."),
        (jwt.MissingRequiredClaimError, f"The token lacks a required claim: {exc}."),
    ]
    for kind, sentence in reasons:
        if isinstance(exc, kind):
            return sentence
    return f"The token is not valid: {exc}."
