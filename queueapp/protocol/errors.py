"""Protocol errors: one base class, and one table from class to every wire form.

The handler and codecs raise :class:`ProtocolError` subclasses; only the transports turn
them into JSON-RPC error objects, HTTP responses (google.rpc.Status bodies) or gRPC
statuses, so each error's code, HTTP status, gRPC status and reason live in
:data:`ERROR_TABLE` and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import redis

from queueapp import store
from queueapp.connection import is_outage

log = logging.getLogger("queueapp.protocol")

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
ERROR_DOMAIN = "a2a-protocol.org"


class ProtocolError(Exception):
    """Base of every error the endpoint answers with."""

    default_message = "A2A error"

    def __init__(self, message: str | None = None, data: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.data = data
        super().__init__(self.message)


class JSONParseError(ProtocolError):
    default_message = "The request body is not valid JSON."


class InvalidRequestError(ProtocolError):
    default_message = "The request is not a valid JSON-RPC 2.0 request."


class MethodNotFoundError(ProtocolError):
    default_message = "Method not found."


class MethodNotAllowedError(ProtocolError):
    default_message = "This HTTP method is not allowed here."


class InvalidParamsError(ProtocolError):
    default_message = "Invalid params."


class InternalError(ProtocolError):
    default_message = "Internal error."


class StorageUnavailableError(InternalError):
    default_message = "The task store (Redis) is unavailable; retry shortly."


class TaskNotFoundError(ProtocolError):
    default_message = "Task not found."


class TaskNotCancelableError(ProtocolError):
    default_message = "The task is already finished and cannot be canceled."


class PushNotificationNotSupportedError(ProtocolError):
    default_message = "Push notifications are not supported by this agent."


class UnsupportedOperationError(ProtocolError):
    default_message = "This operation is not supported."


class ContentTypeNotSupportedError(ProtocolError):
    default_message = "The agent does not accept this content type."


class InvalidAgentResponseError(ProtocolError):
    default_message = "The agent produced an invalid response."


class ExtendedAgentCardNotConfiguredError(ProtocolError):
    default_message = "No extended agent card is configured."


class ExtensionSupportRequiredError(ProtocolError):
    default_message = "A required extension is not supported by the client."


class VersionNotSupportedError(ProtocolError):
    default_message = "This A2A protocol version is not supported."


class PayloadTooLargeError(ProtocolError):
    default_message = "The request body is too large."


class RequestTimeoutError(ProtocolError):
    default_message = "The request was not received in time."


class UnauthenticatedError(ProtocolError):
    default_message = "Authentication required."
    challenge = ""  # the WWW-Authenticate value of the answer (RFC 6750 error="invalid_token" for a refused token)


class IdentityProviderUnavailableError(InternalError):
    default_message = "The identity provider cannot be reached to check the token; retry shortly."


class Wire(NamedTuple):
    code: int  # JSON-RPC error code
    http: int  # HTTP status for HTTP+JSON
    status: str  # google.rpc.Code name in the HTTP+JSON Status body
    reason: str  # ErrorInfo reason
    grpc: str  # gRPC status code name (the spec's table, section 5.4)


ERROR_TABLE: dict[type[ProtocolError], Wire] = {
    JSONParseError: Wire(-32700, 400, "INVALID_ARGUMENT", "PARSE_ERROR", "INVALID_ARGUMENT"),
    InvalidRequestError: Wire(-32600, 400, "INVALID_ARGUMENT", "INVALID_REQUEST", "INVALID_ARGUMENT"),
    MethodNotFoundError: Wire(-32601, 404, "NOT_FOUND", "METHOD_NOT_FOUND", "UNIMPLEMENTED"),
    MethodNotAllowedError: Wire(-32600, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED", "UNIMPLEMENTED"),
    InvalidParamsError: Wire(-32602, 400, "INVALID_ARGUMENT", "INVALID_PARAMS", "INVALID_ARGUMENT"),
    InternalError: Wire(-32603, 500, "INTERNAL", "INTERNAL_ERROR", "INTERNAL"),
    StorageUnavailableError: Wire(-32603, 503, "UNAVAILABLE", "STORAGE_UNAVAILABLE", "UNAVAILABLE"),
    TaskNotFoundError: Wire(-32001, 404, "NOT_FOUND", "TASK_NOT_FOUND", "NOT_FOUND"),
    TaskNotCancelableError: Wire(-32002, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE", "FAILED_PRECONDITION"),
    PushNotificationNotSupportedError: Wire(-32003, 400, "FAILED_PRECONDITION", "PUSH_NOTIFICATION_NOT_SUPPORTED", "UNIMPLEMENTED"),
    UnsupportedOperationError: Wire(-32004, 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION", "UNIMPLEMENTED"),
    ContentTypeNotSupportedError: Wire(-32005, 415, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED", "INVALID_ARGUMENT"),
    InvalidAgentResponseError: Wire(-32006, 500, "INTERNAL", "INVALID_AGENT_RESPONSE", "INTERNAL"),
    ExtendedAgentCardNotConfiguredError: Wire(-32007, 400, "FAILED_PRECONDITION", "EXTENDED_AGENT_CARD_NOT_CONFIGURED", "FAILED_PRECONDITION"),
    ExtensionSupportRequiredError: Wire(-32008, 400, "FAILED_PRECONDITION", "EXTENSION_SUPPORT_REQUIRED", "FAILED_PRECONDITION"),
    VersionNotSupportedError: Wire(-32009, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED", "UNIMPLEMENTED"),
    PayloadTooLargeError: Wire(-32600, 413, "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE", "RESOURCE_EXHAUSTED"),
    RequestTimeoutError: Wire(-32600, 408, "DEADLINE_EXCEEDED", "REQUEST_TIMEOUT", "DEADLINE_EXCEEDED"),
    UnauthenticatedError: Wire(-32600, 401, "UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED"),
    IdentityProviderUnavailableError: Wire(-32603, 503, "UNAVAILABLE", "IDENTITY_PROVIDER_UNAVAILABLE", "UNAVAILABLE"),
}

# 0.3 has no -32009; its clients get an invalid request instead of a code they do not know.
V03_CODE_FALLBACK = {-32009: -32600}

# What 0.3 HTTP+JSON clients read in ``{"type": ...}`` to raise their typed errors: the 0.3
# specification's name where it has one, else the 1.0 name the SDK's clients know
# (VersionNotSupportedError, ExtensionSupportRequiredError), else this server's own.
V03_TYPE_NAMES = {
    TaskNotFoundError: "TaskNotFoundError",
    TaskNotCancelableError: "TaskNotCancelableError",
    PushNotificationNotSupportedError: "PushNotificationNotSupportedError",
    UnsupportedOperationError: "UnsupportedOperationError",
    ContentTypeNotSupportedError: "ContentTypeNotSupportedError",
    InvalidAgentResponseError: "InvalidAgentResponseError",
    ExtendedAgentCardNotConfiguredError: "AuthenticatedExtendedCardNotConfiguredError",
    InvalidParamsError: "InvalidParamsError",
    InvalidRequestError: "InvalidRequestError",
    MethodNotFoundError: "MethodNotFoundError",
    MethodNotAllowedError: "InvalidRequestError",
    InternalError: "InternalError",
    StorageUnavailableError: "InternalError",
    IdentityProviderUnavailableError: "InternalError",
    JSONParseError: "JSONParseError",
    ExtensionSupportRequiredError: "ExtensionSupportRequiredError",
    VersionNotSupportedError: "VersionNotSupportedError",
    UnauthenticatedError: "UnauthenticatedError",
    PayloadTooLargeError: "PayloadTooLargeError",
    RequestTimeoutError: "RequestTimeoutError",
}


def wire(error: ProtocolError) -> Wire:
    return ERROR_TABLE.get(type(error), ERROR_TABLE[InternalError])


def error_info(error: ProtocolError) -> dict[str, Any]:
    """The google.rpc.ErrorInfo detail that 1.0 attaches to every error."""
    metadata = {key: str(value) for key, value in (error.data or {}).items()}
    return {"@type": ERROR_INFO_TYPE, "reason": wire(error).reason, "domain": ERROR_DOMAIN, "metadata": metadata}


def jsonrpc_error(error: ProtocolError, version: str) -> dict[str, Any]:
    """The JSON-RPC ``error`` member in the given protocol version's form."""
    code = wire(error).code
    if version == "1.0":
        return {"code": code, "message": error.message, "data": [error_info(error)]}
    body: dict[str, Any] = {"code": V03_CODE_FALLBACK.get(code, code), "message": error.message}
    if error.data:
        body["data"] = error.data
    return body


def rest_error(error: ProtocolError, version: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for HTTP+JSON: a google.rpc.Status, plus the 0.3 ``type``, ``code`` and ``message``."""
    mapping = wire(error)
    body: dict[str, Any] = {"error": {"code": mapping.http, "status": mapping.status, "message": error.message, "details": [error_info(error)]}}
    if version != "1.0":
        # What 0.3 clients read: the type name, and the JSON-RPC code they map to typed errors.
        body["type"] = V03_TYPE_NAMES.get(type(error), "InternalError")
        body["code"] = V03_CODE_FALLBACK.get(mapping.code, mapping.code)
        body["message"] = error.message
    return mapping.http, body


def is_jsonrpc_path(path: str) -> bool:
    return path == "/a2a" or path.startswith("/a2a/")


def path_error(path: str, error: ProtocolError, jsonrpc_version: str = "1.0", http_status: int | None = None) -> dict[str, Any]:
    """``error`` in the form of the binding ``path`` belongs to, for answers given without a request.

    A JSON-RPC error object with a null id under ``/a2a`` (in ``jsonrpc_version``'s form), the
    0.3 HTTP+JSON body under ``/v1/``, a 1.0 google.rpc.Status anywhere else. ``http_status``
    replaces the Status code when the answer's HTTP status is not the table's.
    """
    if is_jsonrpc_path(path):
        return {"jsonrpc": "2.0", "id": None, "error": jsonrpc_error(error, jsonrpc_version)}
    _, body = rest_error(error, "0.3" if path.startswith("/v1/") else "1.0")
    if http_status is not None:
        body["error"]["code"] = http_status
    return body


def from_store_error(exc: store.StoreError) -> ProtocolError:
    """Translate the queue service's errors into what the protocol says about them."""
    if isinstance(exc, store.TaskNotFound):
        return TaskNotFoundError(str(exc))
    if isinstance(exc, store.TaskNotCancelable):
        return TaskNotCancelableError(str(exc))
    if isinstance(exc, store.InvalidTransition):
        return UnsupportedOperationError(str(exc))
    if isinstance(exc, store.ContextNotAvailable):
        # The same answer for a context of someone else's and one that does not exist.
        return InvalidParamsError(
            f"{exc}. With auth on, contexts are the server's: send the message without contextId to start one, then use the contextId it returns."
        )
    if isinstance(exc, store.NotReplicated):
        return InternalError(f"The task was written but not confirmed on enough replicas: {exc}.")
    return InternalError(f"The task changed while the request was handled; try again ({exc}).")


def from_unexpected(exc: Exception, request: str) -> InternalError:
    """Log an exception nothing expected and say what to answer.

    Redis being down, or refusing writes (full, say), is an outage, not a bug: it gets its own reason and a one-line
    warning. Anything else is logged with its traceback.
    """
    from queueapp.connection import redis_error_text  # no password of a client's repr in the answer or the log

    if is_outage(exc, os_errors=True):
        text = redis_error_text(exc)
        log.warning("Redis unavailable during %s: %s: %s", request, exc.__class__.__name__, text)
        return StorageUnavailableError(f"The task store (Redis) is unavailable ({exc.__class__.__name__}: {text}); retry shortly.")
    if isinstance(exc, redis.RedisError):
        log.error("Unexpected error in %s\n%s", request, redis_error_text(exc, with_traceback=True))
    else:
        log.error("Unexpected error in %s", request, exc_info=exc)
    return InternalError(f"Internal error: {exc.__class__.__name__}. The server log has the details.")
