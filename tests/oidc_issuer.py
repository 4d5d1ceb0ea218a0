"""A local OpenID Connect issuer for tests: keys made here, discovery and JWKS served on 127.0.0.1.

It serves only what a relying party reads (the discovery document and the key set), counts
the requests, and can switch keys (rotation), answer slowly or stop answering.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "a2a-queue"


@dataclass
class SigningKey:
    """A key pair made for the test, with its key id."""

    alg: str
    private: Any = None
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048) if self.alg == "RS256" else ec.generate_private_key(ec.SECP256R1())

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        return {**algorithm.to_jwk(self.private.public_key(), as_dict=True), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow answer is what some tests are about


class LocalIssuer:
    """An issuer at ``http://127.0.0.1:PORT/realm`` publishing :attr:`keys`."""

    def __init__(self, *keys: SigningKey):
        self.keys = list(keys)
        self.hits: Counter[str] = Counter()
        self.delay = 0.0  # seconds before each answer
        self.issuer_in_document: str | None = None  # None: the issuer itself
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}/realm"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def token(self, key: SigningKey | None = None, **claims: Any) -> str:
        """A token signed with ``key`` (the first published key by default)."""
        return make_token(key or self.keys[0], self.issuer, **claims)

    def _document(self, path: str) -> dict[str, Any] | None:
        if path == "/realm/.well-known/openid-configuration":
            return {
                "issuer": self.issuer_in_document or self.issuer,
                "jwks_uri": self.issuer + "/keys",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
        if path == "/realm/keys":
            return {"keys": [key.public_jwk() for key in self.keys]}
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- the name http.server calls
                issuer.hits[self.path] += 1
                time.sleep(issuer.delay)
                document = issuer._document(self.path)
                body = json.dumps(document or {"error": "not found"}).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    @property
    def key_fetches(self) -> int:
        return self.hits["/realm/keys"]


def make_token(key: SigningKey, issuer: str, **claims: Any) -> str:
    """A valid token of ``issuer`` signed with ``key``; claims given override (None removes one)."""
    now = int(time.time())
    body = {"iss": issuer, "aud": AUDIENCE, "sub": "user-" + key.kid, "iat": now, "nbf": now, "exp": now + 300, **claims}
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    """A token with ``alg: none`` and no signature."""
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def hmac_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """The classic confusion attack: HS256 with the issuer's public key as the HMAC secret.

    Made by hand, since PyJWT refuses to sign with an asymmetric key.
    """
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def tampered(token: str, **changes: Any) -> str:
    """The token with its claims changed and the original signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{_b64(json.dumps({**claims_of(token), **changes}).encode())}.{signature}"
