"""The gRPC binding: the SDK's generated ``A2AService``, answered by the same handler.

Each request message is printed as 1.0 JSON (the form the other bindings hand the
handler), and the handler's 1.0 JSON answer is parsed back into the response message;
no protocol rule lives here, only the conversion at the edge. Errors become gRPC
statuses with a ``google.rpc.ErrorInfo`` detail, from the one table in ``errors``.
Each call decodes its own request bytes: grpcio would answer bytes its deserializer
cannot decode with UNKNOWN and log a traceback, where they are a parse error
(INVALID_ARGUMENT) like a body that is not JSON.
Streams end where the handler's streams end, as SSE does; a client that cancels its call
leaves nothing running: the event follower is closed on the way out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Never

import grpc
from a2a.types import a2a_pb2 as pb
from a2a.types import a2a_pb2_grpc
from django.utils.datastructures import CaseInsensitiveMapping
from google.protobuf import any_pb2, empty_pb2
from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from queueapp.model import Json
from queueapp.protocol import codec, transport
from queueapp.protocol.codec import MessageT
from queueapp.protocol.errors import ERROR_DOMAIN, JSONParseError, ProtocolError, from_unexpected, wire
from queueapp.protocol.handler import CallContext

log = logging.getLogger("queueapp.protocol")

Context = grpc.aio.ServicerContext[bytes, Message]
UnaryMethod = Callable[["A2AService", bytes, Context], Awaitable[Message]]
StreamMethod = Callable[["A2AService", bytes, Context], AsyncIterator[pb.StreamResponse]]

SERVICE = pb.DESCRIPTOR.services_by_name["A2AService"]

# What each unary method answers with; the handler's JSON is parsed into it.
RESPONSES: dict[str, type[Message]] = {
    "SendMessage": pb.SendMessageResponse,
    "GetTask": pb.Task,
    "ListTasks": pb.ListTasksResponse,
    "CancelTask": pb.Task,
    "CreateTaskPushNotificationConfig": pb.TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": pb.TaskPushNotificationConfig,
    "ListTaskPushNotificationConfigs": pb.ListTaskPushNotificationConfigsResponse,
    "DeleteTaskPushNotificationConfig": empty_pb2.Empty,
    "GetExtendedAgentCard": pb.AgentCard,
}


def to_message(value: Json | None, message_type: type[MessageT]) -> MessageT:
    """The handler's 1.0 JSON as a response message (the store keeps 1.0 JSON, so it parses)."""
    return ParseDict(value or {}, message_type(), ignore_unknown_fields=True)


async def call_context(context: Context) -> CallContext:
    """Version and credentials from the call's metadata, checked as on HTTP."""
    metadata = CaseInsensitiveMapping({key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)})
    version = metadata.get(transport.VERSION_HEADER)
    if version:
        transport.check_version(version, default="1.0", allowed=("1.0",))
    return await transport.authenticate_headers(metadata)


def status_of(error: ProtocolError) -> grpc.Status:
    """The gRPC status of a protocol error: code from the table, ErrorInfo in the details."""
    mapping = wire(error)
    info = error_details_pb2.ErrorInfo(reason=mapping.reason, domain=ERROR_DOMAIN, metadata={k: str(v) for k, v in (error.data or {}).items()})
    detail = any_pb2.Any()
    detail.Pack(info)
    code = grpc.StatusCode[mapping.grpc]
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=error.message, details=[detail]))


async def abort(context: Context, error: ProtocolError) -> Never:
    status = status_of(error)
    await context.abort(status.code, status.details, status.trailing_metadata)


def decode(method: str, raw: bytes) -> Message:
    """The request message of ``method`` from its bytes; bytes that are none are a parse error."""
    request_type: type[Message] = codec.PARAM_TYPES[method]
    try:
        return request_type.FromString(raw)
    except DecodeError as exc:
        reason = str(exc).rsplit(": ", 1)[-1]  # after protobuf's "Error parsing message with type ...", which the text says
        log.warning("gRPC %s: a request of %d bytes is no %s: %s", method, len(raw), request_type.DESCRIPTOR.full_name, reason)
        raise JSONParseError(f"The request bytes are not a {request_type.DESCRIPTOR.full_name} in the protobuf wire format: {reason}.") from None


def _unary(method: str) -> UnaryMethod:
    response_type = RESPONSES[method]

    async def call(self: A2AService, raw: bytes, context: Context) -> Message:
        try:
            request = decode(method, raw)
            ctx = await call_context(context)
            handler = await transport.make_handler()
            result = await handler.call(method, codec.parse_request(method, request), ctx)
            return to_message(result, response_type)
        except ProtocolError as exc:
            await abort(context, exc)
        except Exception as exc:
            await abort(context, from_unexpected(exc, f"gRPC {method}"))

    call.__name__ = method
    return call


def _stream(method: str) -> StreamMethod:
    async def call(self: A2AService, raw: bytes, context: Context) -> AsyncIterator[pb.StreamResponse]:
        ended = False
        try:
            request = decode(method, raw)
            ctx = await call_context(context)
            handler = await transport.make_handler()
            events = await handler.open_stream(method, codec.parse_request(method, request), ctx)
            async with aclosing(events):
                async for event in events:
                    yield to_message(event, pb.StreamResponse)
            ended = True
        except ProtocolError as exc:
            ended = True
            await abort(context, exc)
        except Exception as exc:
            ended = True
            await abort(context, from_unexpected(exc, f"gRPC {method}"))
        finally:
            if not ended:
                # The client cancelled or went away: gRPC cancelled this call while it read
                # events, or dropped it between two (then it is closed here). Either way the
                # follower is closed by now.
                log.info("gRPC %s stream closed: cancelled (the client went away, or the server stopped)", method)

    call.__name__ = method
    return call


class A2AService(a2a_pb2_grpc.A2AServiceServicer):
    """Every method of the spec's service, each a thin edge over :class:`Handler`."""

    SendMessage = _unary("SendMessage")
    SendStreamingMessage = _stream("SendStreamingMessage")
    GetTask = _unary("GetTask")
    ListTasks = _unary("ListTasks")
    CancelTask = _unary("CancelTask")
    SubscribeToTask = _stream("SubscribeToTask")
    CreateTaskPushNotificationConfig = _unary("CreateTaskPushNotificationConfig")
    GetTaskPushNotificationConfig = _unary("GetTaskPushNotificationConfig")
    ListTaskPushNotificationConfigs = _unary("ListTaskPushNotificationConfigs")
    DeleteTaskPushNotificationConfig = _unary("DeleteTaskPushNotificationConfig")
    GetExtendedAgentCard = _unary("GetExtendedAgentCard")


def add_to_server(server: grpc.aio.Server) -> None:
    """Serve every method of the spec's ``A2AService``, each call given its request's bytes."""
    service = A2AService()
    handlers: dict[str, grpc.RpcMethodHandler[bytes, Message]] = {}
    for method in SERVICE.methods:
        behaviour = getattr(service, method.name)
        serialize = GetMessageClass(method.output_type).SerializeToString
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(behaviour, response_serializer=serialize)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(behaviour, response_serializer=serialize)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
