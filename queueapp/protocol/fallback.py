"""Answers for machine paths that no protocol view answered in JSON.

A path under a machine prefix that names no route, a method a view does not take, or a
refusal from Django itself (its 404, 405, 400 or 500 pages are HTML) is answered here in
the error form of the binding the path belongs to: a JSON-RPC error object under ``/a2a``,
a 0.3 HTTP+JSON body under ``/v1/``, a 1.0 google.rpc.Status anywhere else. A program never
gets the dashboard's HTML.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from queueapp.model import dumps
from queueapp.protocol.errors import (
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    MethodNotFoundError,
    ProtocolError,
    is_jsonrpc_path,
    path_error,
)
from queueapp.protocol.transport import requested_version_or


def error_response(request: HttpRequest, error: ProtocolError, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    """``error`` with HTTP ``status``, in the form of the binding ``request.path`` belongs to."""
    version = requested_version_or(request, "0.3") if is_jsonrpc_path(request.path) else "1.0"
    response = HttpResponse(dumps(path_error(request.path, error, version, status)), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _explain(request: HttpRequest, status: int, allow: str | None) -> ProtocolError:
    asked = f"{request.method} {request.path}"
    if status == 404:
        return MethodNotFoundError(f"Nothing answers {asked}. Task and push config ids never hold ':' or '/'; docs/protocol.md lists the routes.")
    if status == 405:
        return MethodNotAllowedError(f"{request.method} is not allowed on {request.path}; use {allow or 'another method'}.")
    if status >= 500:
        return InternalError(f"Internal error answering {asked}. The server log has the details.")
    return InvalidRequestError(f"The request {asked} was refused (HTTP {status}).")


def as_json(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """``response`` itself, or, when it is an error that is not JSON, the same error as JSON."""
    content_type = response.get("Content-Type", "")
    if response.status_code < 400 or content_type.startswith("application/json"):
        return response
    allow = response.get("Allow")
    error = _explain(request, response.status_code, allow)
    response.close()
    # The headers that tell a client what to do next go along: Allow, and the challenge of a 401.
    kept = {name: response[name] for name in ("Allow", "WWW-Authenticate") if response.has_header(name)}
    return error_response(request, error, response.status_code, kept)


async def no_route(request: HttpRequest) -> HttpResponse:
    """The view for machine paths that match no route."""
    return error_response(request, _explain(request, 404, None), 404)
