"""Credentials for the A2A endpoint: bearer tokens and API keys from the settings.

Auth is off unless ``A2A_AUTH_TOKENS`` or ``A2A_AUTH_API_KEYS`` is set. Each entry may
carry a name (``alice:token1``); the name is the identity stored on the tasks that
credential submits. Every configured secret is compared with ``hmac.compare_digest``,
all of them every time, so the answer takes as long for a near miss as for a stranger.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

API_KEY_HEADER = "X-API-Key"
REALM = "a2a"


class AuthError(Exception):
    """The request carries no credential, or one that is not configured."""


@dataclass(frozen=True)
class Credential:
    identity: str
    secret: str


def _named(entries: tuple[str, ...], prefix: str) -> tuple[Credential, ...]:
    credentials = []
    for index, entry in enumerate(entries, start=1):
        name, sep, secret = entry.partition(":")
        if sep and name.strip() and secret:
            credentials.append(Credential(name.strip(), secret))
        else:
            credentials.append(Credential(f"{prefix}-{index}", entry))
    return tuple(credentials)


@dataclass(frozen=True)
class Authenticator:
    tokens: tuple[Credential, ...]
    api_keys: tuple[Credential, ...]

    @classmethod
    def from_config(cls, config: Any) -> Authenticator:
        return cls(_named(tuple(config.auth_tokens), "token"), _named(tuple(config.auth_api_keys), "key"))

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.api_keys)

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 answer."""
        if self.tokens:
            return f'Bearer realm="{REALM}"'
        return f'ApiKey realm="{REALM}", header="{API_KEY_HEADER}"'

    def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """The identity the request's credential names; None when auth is off.

        Raises :class:`AuthError` with a sentence saying what is wrong.
        """
        if not self.enabled:
            return None
        authorization = headers.get("Authorization", "")
        api_key = headers.get(API_KEY_HEADER, "")
        scheme, _, token = authorization.partition(" ")
        if authorization and scheme.lower() == "bearer" and token.strip():
            found = _match(self.tokens, token.strip())
        elif api_key:
            found = _match(self.api_keys, api_key)
        else:
            raise AuthError(self._missing_message())
        if found is None:
            raise AuthError("The credential is not valid.")
        return found

    def _missing_message(self) -> str:
        ways = []
        if self.tokens:
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
