"""Credentials for the A2A endpoint: static secrets from the settings, and OpenID Connect tokens.

Auth is off unless ``A2A_AUTH_TOKENS``, ``A2A_AUTH_API_KEYS`` or ``A2A_AUTH_OIDC_ISSUER`` is
set; any of them may be on together. Each static entry may carry a name (``alice:token1``);
the name is the identity stored on the tasks that credential submits. Every configured
secret is compared with ``hmac.compare_digest``, all of them every time, so the answer takes
as long for a near miss as for a stranger. A bearer token that is no static token and looks
like a JWT goes to the OpenID Connect check (:mod:`queueapp.oidc`), whose identity is the
token's ``A2A_AUTH_OIDC_IDENTITY_CLAIM``.

The authenticator takes the request's headers as a plain mapping (any letter case), so the
HTTP bindings and a gRPC binding's call metadata use it alike. A process builds one
(``Services.authenticator``), so the issuer's keys stay cached.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from queueapp.config import Config, named_secrets
from queueapp.oidc import IssuerUnavailable, OidcVerifier, TokenRejected, looks_like_jwt

API_KEY_HEADER = "X-API-Key"
REALM = "a2a"


class AuthError(Exception):
    """The request carries no credential, or one that is not configured (answered 401).

    ``invalid_token`` says a bearer token was sent and refused, which the challenge tells the
    client (RFC 6750 ``error="invalid_token"``), so that it knows to get a new one.
    """

    def __init__(self, message: str, *, invalid_token: bool = False):
        super().__init__(message)
        self.invalid_token = invalid_token


class AuthUnavailableError(Exception):
    """The credential cannot be checked now: the identity provider is unreachable (answered 503)."""


@dataclass(frozen=True)
class Credential:
    identity: str
    secret: str


def _named(entries: tuple[str, ...], prefix: str) -> tuple[Credential, ...]:
    """The credentials of the entries; the configuration has refused one secret given to two identities."""
    return tuple(Credential(identity, secret) for identity, secret in named_secrets(entries, prefix))


@dataclass(frozen=True)
class Authenticator:
    tokens: tuple[Credential, ...]
    api_keys: tuple[Credential, ...]
    oidc: OidcVerifier | None = None

    @classmethod
    def from_config(cls, config: Config) -> Authenticator:
        return cls(_named(tuple(config.auth_tokens), "token"), _named(tuple(config.auth_api_keys), "key"), OidcVerifier.from_config(config))

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.api_keys or self.oidc)

    @property
    def takes_bearer(self) -> bool:
        return bool(self.tokens or self.oidc)

    def challenge(self, invalid_token: bool = False) -> str:
        """The ``WWW-Authenticate`` value of a 401 answer."""
        if self.takes_bearer:
            return f'Bearer realm="{REALM}", error="invalid_token"' if invalid_token else f'Bearer realm="{REALM}"'
        return f'ApiKey realm="{REALM}", header="{API_KEY_HEADER}"'

    async def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """The identity the request's credential names; None when auth is off.

        ``headers`` maps header (or gRPC metadata) names, in any letter case, to values.
        Raises :class:`AuthError` with a sentence saying what is wrong, or
        :class:`AuthUnavailableError` when the identity provider cannot be reached.
        """
        if not self.enabled:
            return None
        lowered = {name.lower(): value for name, value in headers.items()}
        authorization = lowered.get("authorization", "")
        api_key = lowered.get(API_KEY_HEADER.lower(), "")
        scheme, _, token = authorization.partition(" ")
        bearer = authorization and scheme.lower() == "bearer" and token.strip()
        if bearer:
            found = await self._bearer(token.strip())
        elif api_key:
            found = _match(self.api_keys, api_key)
        else:
            raise AuthError(self._missing_message())
        if found is None:
            raise AuthError("The credential is not valid.", invalid_token=bool(bearer))
        return found

    async def _bearer(self, token: str) -> str | None:
        found = _match(self.tokens, token)
        if found is not None or self.oidc is None or not looks_like_jwt(token):
            return found
        try:
            return await self.oidc.verify(token)
        except TokenRejected as exc:
            raise AuthError(str(exc), invalid_token=True) from None
        except IssuerUnavailable as exc:
            raise AuthUnavailableError(str(exc)) from None

    def _missing_message(self) -> str:
        ways = []
        if self.oidc:
            either = "a token or " if self.tokens else ""
            ways.append(f"an Authorization: Bearer header with {either}a JWT from {self.oidc.issuer}")
        elif self.tokens:
            ways.append("an Authorization: Bearer <token> header")
        if self.api_keys:
            ways.append(f"an {API_KEY_HEADER} header")
        return "Authentication required: send " + " or ".join(ways) + "."


def _match(credentials: tuple[Credential, ...], presented: str) -> str | None:
    found = None
    given = presented.encode()
    for credential in credentials:
        if hmac.compare_digest(credential.secret.encode(), given) and found is None:
            found = credential.identity
    return found
