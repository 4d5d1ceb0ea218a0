"""The HTTP+JSON binding: 1.0 routes at the root of the interface url, 0.3 under ``/v1``.

Each route builds the 1.0 params from its path, query and body, calls the same
handler as JSON-RPC, and answers with the result or an HTTP status carrying a
google.rpc.Status body. The route decides the wire form (``/v1`` is 0.3); an
``A2A-Version`` header, when sent, must still name a version this server speaks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from queueapp import config as config_module
from queueapp.model import Json
from queueapp.protocol import codec, codec03, transport
from queueapp.protocol.errors import (
    InvalidParamsError,
    JSONParseError,
    MethodNotAllowedError,
    ProtocolError,
    UnauthenticatedError,
    from_unexpected,
    rest_error,
)
from queueapp.protocol.sse import sse_response

log = transport.log

# Query parameters that are numbers or booleans in the request messages.
_INT_QUERY = ("pageSize", "historyLength")
_BOOL_QUERY = ("includeArtifacts",)


def _json_body(request: HttpRequest) -> Json:
    body = transport.read_body(request)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JSONParseError(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidParamsError("The request body must be a JSON object.")
    return data


def _query(request: HttpRequest) -> Json:
    params: Json = {}
    for name, values in request.GET.lists():
        value = values[-1]  # the last of a repeated parameter, as QueryDict.items gives it
        if name == transport.VERSION_HEADER:
            continue
        if name in _INT_QUERY:
            try:
                params[name] = int(value)
            except ValueError:
                raise InvalidParamsError(f"Query parameter {name} must be a whole number, not {value!r}.") from None
        elif name in _BOOL_QUERY:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidParamsError(f"Query parameter {name} must be true or false, not {value!r}.")
            params[name] = value.lower() in ("true", "1")
        else:
            params[name] = value
    return params


def _params(version: str, method: str, request: HttpRequest, path: Json) -> Json:
    """The 1.0 params of a REST call: path ids, then the query (GET) or the body."""
    if version == "0.3" and method in ("SendMessage", "SendStreamingMessage"):
        return codec03.rest_send_params(transport.read_body(request))
    if version == "0.3" and method == "CreateTaskPushNotificationConfig":
        return codec03.rest_push_config_params(path["taskId"], transport.read_body(request))
    source = _query(request) if request.method in ("GET", "DELETE") else _json_body(request)
    return codec.parse_params(method, {**source, **path})


def _error_response(error: ProtocolError, version: str, headers: dict[str, str] | None = None) -> HttpResponse:
    status, body = rest_error(error, version)
    if isinstance(error, UnauthenticatedError):
        headers = transport.challenge_headers(error)
    return transport.json_response(body, status=status, headers=headers)


async def _serve(request: HttpRequest, version: str, method: str, path: Json) -> HttpResponseBase:
    try:
        if request.headers.get(transport.VERSION_HEADER) or request.GET.get(transport.VERSION_HEADER):
            transport.requested_version(request)  # only checked: the route decides the wire form
        ctx = await transport.authenticate(request)
        params = _params(version, method, request, path)
        handler = await transport.make_handler()
        if method in codec.STREAMING_METHODS:
            events = await handler.open_stream(method, params, ctx)
            encode = codec03.rest_event if version == "0.3" else _same
            return sse_response(events, encode, lambda error: rest_error(error, version)[1], config_module.get().sse_keepalive)
        result = await handler.call(method, params, ctx)
        body = codec03.rest_result(method, result) if version == "0.3" else (result if result is not None else {})
        return transport.json_response(body)
    except ProtocolError as exc:
        return _error_response(exc, version)
    except Exception as exc:
        return _error_response(from_unexpected(exc, f"HTTP+JSON request method={method}"), version)


def _same(event: Json) -> Json:
    return event


def route(version: str, methods: dict[str, str]) -> Callable[..., Any]:
    """A view for one path: ``methods`` maps each HTTP method to the RPC it calls."""

    @csrf_exempt
    async def view(request: HttpRequest, task_id: str | None = None, config_id: str | None = None) -> HttpResponseBase:
        rpc = methods.get(request.method or "")
        if rpc is None:
            error = MethodNotAllowedError(f"{request.method} is not allowed on {request.path}; use {' or '.join(methods)}.")
            return _error_response(error, version, {"Allow": ", ".join(methods)})
        path: Json = {}
        if task_id is not None:
            path["taskId" if "PushNotificationConfig" in rpc else "id"] = task_id
        if config_id is not None:
            path["id"] = config_id
        return await _serve(request, version, rpc, path)

    return view
