"""The JSON-RPC 2.0 binding at ``POST /a2a``, for 1.0 and 0.3.

It parses the envelope, picks the codec by the A2A-Version header, calls the handler
and writes the answer; every error becomes a JSON-RPC error object with the request
id echoed. Anything unexpected is logged with its traceback and answered as -32603.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from queueapp import config as config_module
from queueapp.model import Json
from queueapp.protocol import codec, codec03, transport
from queueapp.protocol.errors import (
    InvalidRequestError,
    JSONParseError,
    MethodNotAllowedError,
    MethodNotFoundError,
    ProtocolError,
    UnauthenticatedError,
    from_unexpected,
    jsonrpc_error,
    wire,
)
from queueapp.protocol.sse import sse_response

log = transport.log
RequestId = str | int | None


def _envelope(body: bytes) -> tuple[RequestId, str, Any]:
    """(id, method, params) of a single JSON-RPC request, or the error that says what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JSONParseError(f"The request body is not valid JSON: {exc}.") from None
    if isinstance(data, list):
        raise InvalidRequestError("Batch requests are not supported: send one JSON-RPC request object per HTTP request.")
    if not isinstance(data, dict):
        raise InvalidRequestError("The request must be a JSON object with jsonrpc, method, params and id.")
    if data.get("jsonrpc") != "2.0":
        raise InvalidRequestError(f"'jsonrpc' must be exactly \"2.0\", not {data.get('jsonrpc')!r}.")
    request_id = data.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
        raise InvalidRequestError("'id' must be a string, an integer or null.")
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequestError("'method' is required: a string such as SendMessage (1.0) or message/send (0.3).", data={"id": request_id})
    params = data.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidRequestError(f"'params' must be a JSON object, not {type(params).__name__}.", data={"id": request_id})
    return request_id, method, params


def _id_of(body: bytes) -> RequestId:
    """The id of a request refused before its body was read, so that its error still echoes
    it (JSON-RPC 2.0, section 5); None when the body holds no usable one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    request_id = data.get("id") if isinstance(data, dict) else None
    return request_id if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None


def _resolve(version: str, method: str, params: Any) -> tuple[str, Json]:
    """The 1.0 method name and 1.0 params of a request in either version."""
    if version == "1.0":
        if method not in codec.PARAM_TYPES:
            hint = f" {method} is a 0.3 method; use {codec03.METHODS[method]}." if method in codec03.METHODS else ""
            raise MethodNotFoundError(f"Method {method!r} does not exist in A2A 1.0.{hint}")
        return method, codec.parse_params(method, params)
    if method not in codec03.METHODS:
        hint = f" {method} is a 1.0 method: send the header A2A-Version: 1.0." if method in codec.PARAM_TYPES else ""
        raise MethodNotFoundError(f"Method {method!r} does not exist in A2A 0.3.{hint}")
    return codec03.METHODS[method], codec03.parse_params(method, params)


def _answer(request_id: RequestId, version: str, *, result: Any = None, error: ProtocolError | None = None) -> HttpResponse:
    if error is None:
        return transport.json_response({"jsonrpc": "2.0", "id": request_id, "result": result})
    body = {"jsonrpc": "2.0", "id": request_id, "error": jsonrpc_error(error, version)}
    if isinstance(error, UnauthenticatedError):
        return transport.json_response(body, status=wire(error).http, headers=transport.challenge_headers(error))
    if isinstance(error, MethodNotAllowedError):  # not a JSON-RPC call at all: the HTTP status says so
        return transport.json_response(body, status=wire(error).http, headers={"Allow": "POST"})
    return transport.json_response(body)


@csrf_exempt
async def endpoint(request: HttpRequest) -> HttpResponseBase:
    request_id: RequestId = None
    version = "1.0"
    body = request.read()  # read first: an error found before it is parsed still echoes its id
    try:
        version = transport.requested_version(request)
        if request.method != "POST":
            raise MethodNotAllowedError(f"{request.method} is not allowed on {request.path}: the JSON-RPC endpoint takes POST requests with a JSON body.")
        ctx = await transport.authenticate(request)
        request_id, method, params = _envelope(transport.json_body(request, body))
        method, params = _resolve(version, method, params)
        handler = await transport.make_handler()
        if method in codec.STREAMING_METHODS:
            events = await handler.open_stream(method, params, ctx)
            return _stream(events, request_id, version)
        result = await handler.call(method, params, ctx)
        return _answer(request_id, version, result=codec03.jsonrpc_result(method, result) if version == "0.3" else result)
    except ProtocolError as exc:
        if exc.data and "id" in exc.data:
            request_id = exc.data.pop("id")
        elif request_id is None:  # refused before the body was parsed (version, method, content type, credentials)
            request_id = _id_of(body)
        return _answer(request_id, version, error=exc)
    except Exception as exc:
        request_id = _id_of(body) if request_id is None else request_id  # an outage while authenticating, say
        return _answer(request_id, version, error=from_unexpected(exc, f"JSON-RPC request id={request_id}"))


def _stream(events: AsyncGenerator[Json, None], request_id: RequestId, version: str) -> StreamingHttpResponse:
    def encode(event: Json) -> Json:
        return {"jsonrpc": "2.0", "id": request_id, "result": codec03.jsonrpc_event(event) if version == "0.3" else event}

    def encode_error(error: ProtocolError) -> Json:
        return {"jsonrpc": "2.0", "id": request_id, "error": jsonrpc_error(error, version)}

    return sse_response(events, encode, encode_error, config_module.get().sse_keepalive)
