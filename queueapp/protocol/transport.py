"""What the bindings share: version negotiation, auth, reading the body, JSON answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse

from queueapp import tracing
from queueapp.auth import AuthError, AuthUnavailableError
from queueapp.model import dumps
from queueapp.protocol.errors import ContentTypeNotSupportedError, IdentityProviderUnavailableError, UnauthenticatedError, VersionNotSupportedError
from queueapp.protocol.handler import CallContext, Handler
from queueapp.services import get_services

log = logging.getLogger("queueapp.protocol")

VERSION_HEADER = "A2A-Version"
SUPPORTED_VERSIONS = ("1.0", "0.3")


def requested_version(request: HttpRequest) -> str:
    """The protocol version asked for (header, else query); none means 0.3.

    Only major.minor counts. Raises :class:`VersionNotSupportedError` for anything else.
    """
    raw = (request.headers.get(VERSION_HEADER) or request.GET.get(VERSION_HEADER) or "").strip()
    return check_version(raw)


def requested_version_or(request: HttpRequest, default: str) -> str:
    """The version asked for, or ``default`` when none is asked or the one asked is not spoken.

    For answers that must be given anyway (the card, a fallback error), never refused.
    """
    if not (request.headers.get(VERSION_HEADER) or request.GET.get(VERSION_HEADER)):
        return default
    try:
        return requested_version(request)
    except VersionNotSupportedError:
        return default


def check_version(raw: str, default: str = "0.3", allowed: tuple[str, ...] = SUPPORTED_VERSIONS) -> str:
    """The major.minor of an ``A2A-Version`` value (``default`` when empty), if it is one of ``allowed``."""
    raw = raw.strip()
    if not raw:
        return default
    parts = raw.split(".")
    major_minor = ".".join(parts[:2]) if len(parts) >= 2 else f"{parts[0]}.0"
    if major_minor in allowed and all(p.isdigit() for p in parts):
        return major_minor
    raise VersionNotSupportedError(f"A2A-Version {raw!r} is not supported; this endpoint speaks {' and '.join(allowed)}.")


async def authenticate(request: HttpRequest) -> CallContext:
    """The caller's context, or :class:`UnauthenticatedError` when auth is on and fails."""
    return await authenticate_headers(request.headers)


async def authenticate_headers(headers: Mapping[str, str]) -> CallContext:
    """The caller's context from header names (any case) and values: HTTP headers or gRPC metadata.

    Raises :class:`UnauthenticatedError` (401) or :class:`IdentityProviderUnavailableError` (503).
    """
    authenticator = (await get_services()).authenticator
    try:
        return CallContext(identity=await authenticator.authenticate(headers), traceparent=tracing.header(headers))
    except AuthError as exc:
        error = UnauthenticatedError(str(exc))
        error.challenge = authenticator.challenge(exc.invalid_token)
        raise error from None
    except AuthUnavailableError as exc:
        log.warning("Cannot check a bearer token: %s", exc)
        raise IdentityProviderUnavailableError(f"{exc}; retry shortly.") from None


def challenge_headers(error: UnauthenticatedError) -> dict[str, str]:
    return {"WWW-Authenticate": error.challenge}


async def make_handler() -> Handler:
    return Handler(await get_services())


def is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def read_body(request: HttpRequest) -> bytes:
    """The body of a POST, read from the request, which must say it is JSON (see :func:`json_body`)."""
    # request.read() rather than request.body: the size cap is A2A_MAX_BODY_BYTES, enforced
    # by the ASGI middleware before Django buffers anything, not Django's own upload limit.
    return json_body(request, request.read())


def json_body(request: HttpRequest, body: bytes) -> bytes:
    """``body``, the body of a POST, which must say it is JSON; anything else is ContentTypeNotSupported.

    A web page on another site can POST here without asking first only with a form or
    text/plain type, or with none at all (a ``no-cors`` fetch of a Blob): refusing those
    keeps it from creating or canceling tasks. A POST without a body and without a
    Content-Type is still served when no browser sent it (no ``Origin``): the SDK clients'
    cancel (0.3) and subscribe (1.0) send exactly that.
    """
    declared = (request.content_type or "").lower()
    if is_json_type(declared):
        return body
    if declared:
        raise ContentTypeNotSupportedError(f"The request body is sent as {declared}; send it as JSON with Content-Type: application/json.")
    if body:
        raise ContentTypeNotSupportedError("The request has a body but no Content-Type; send it as JSON with Content-Type: application/json.")
    if request.headers.get("Origin"):
        raise ContentTypeNotSupportedError("A browser's POST must say Content-Type: application/json.")
    return body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "application/json") -> HttpResponse:
    response = HttpResponse(dumps(body), status=status, content_type=content_type)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
