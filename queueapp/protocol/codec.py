"""The 1.0 codec: validate request params with the SDK's protobuf types.

Params are parsed into the official ``a2a.types`` messages with
``google.protobuf.json_format`` (so wrong types get a precise -32602), then printed
back as canonical 1.0 JSON (camelCase, ``TASK_STATE_*``, ``ROLE_*``). Results need no
conversion: the store already keeps tasks and events in 1.0 JSON.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar, cast

from a2a.types import a2a_pb2 as pb
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message

from queueapp import config as config_module
from queueapp.model import Json
from queueapp.protocol.errors import InvalidParamsError
from queueapp.states import TaskState

MessageT = TypeVar("MessageT", bound=Message)

PARAM_TYPES: dict[str, type] = {
    "SendMessage": pb.SendMessageRequest,
    "SendStreamingMessage": pb.SendMessageRequest,
    "GetTask": pb.GetTaskRequest,
    "ListTasks": pb.ListTasksRequest,
    "CancelTask": pb.CancelTaskRequest,
    "SubscribeToTask": pb.SubscribeToTaskRequest,
    "CreateTaskPushNotificationConfig": pb.TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": pb.GetTaskPushNotificationConfigRequest,
    "ListTaskPushNotificationConfigs": pb.ListTaskPushNotificationConfigsRequest,
    "DeleteTaskPushNotificationConfig": pb.DeleteTaskPushNotificationConfigRequest,
    "GetExtendedAgentCard": pb.GetExtendedAgentCardRequest,
}
METHODS = tuple(PARAM_TYPES)
STREAMING_METHODS = frozenset({"SendStreamingMessage", "SubscribeToTask"})


def plain(value: Any) -> Any:
    """Undo protobuf's float-only JSON numbers (``42`` comes back as ``42.0``) in free-form data."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def to_proto(value: Any, message: MessageT, what: str) -> MessageT:
    """Parse JSON into a protobuf message, turning every failure into -32602."""
    if not isinstance(value, dict):
        raise InvalidParamsError(f"{what} must be a JSON object, not {type(value).__name__}.")
    # The stubs type the C (upb) descriptor apart from the Python one; both have these fields.
    check_shapes(value, cast(Descriptor, message.DESCRIPTOR), "")
    try:
        return ParseDict(value, message, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidParamsError(f"Invalid {what}: {exc}".rstrip(".") + ".") from None


def check_shapes(value: Json, descriptor: Descriptor, where: str) -> None:
    """Refuse what ``ParseDict`` lets through unsaid.

    It reads a string or a list given for an object field as an empty object
    (``configuration: "x"``), keeps an enum number that names no value
    (``status: 99``), which nothing downstream can use, and reads bytes that are not
    base64 as whatever few bytes it can make out of them (``raw: "!!!"`` as none).
    """
    for key, item in value.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None or item is None:
            continue
        name = f"{where}.{key}" if where else key
        entry = field.message_type if field.message_type and field.message_type.GetOptions().map_entry else None
        if entry is not None:
            _check_each(item, dict, entry.fields_by_name["value"], name)
        elif field.is_repeated:
            _check_each(item, list, field, name)
        else:
            _check_value(item, field, name)


def _check_each(items: Any, kind: type[dict[str, Any]] | type[list[Any]], field: FieldDescriptor, name: str) -> None:
    if not isinstance(items, kind):
        raise InvalidParamsError(f"{name} must be a JSON {'object' if kind is dict else 'array'}, not {type(items).__name__}.")
    for index, item in (items.items() if isinstance(items, dict) else enumerate(items)):
        _check_value(item, field, f"{name}[{index!r}]" if isinstance(items, dict) else f"{name}[{index}]")


def _check_value(item: Any, field: FieldDescriptor, name: str) -> None:
    message_type, enum_type = field.message_type, field.enum_type  # set for a field of that type
    if message_type is not None and not message_type.full_name.startswith("google.protobuf."):
        if not isinstance(item, dict):
            raise InvalidParamsError(f"{name} must be a JSON object, not {type(item).__name__}.")
        check_shapes(item, message_type, name)
    elif enum_type is not None and type(item) is int and enum_type.values_by_number.get(item) is None:
        names = ", ".join(v.name for v in enum_type.values)
        raise InvalidParamsError(f"{name} {item} names no value: use one of {names}.")
    elif field.type == FieldDescriptor.TYPE_BYTES and isinstance(item, str):
        check_base64(item, name)


_URL_SAFE = str.maketrans("-_", "+/")


def check_base64(text: str, name: str) -> None:
    """Bytes in JSON as protobuf writes and reads them: base64, standard or URL-safe, padded or not."""
    standard = text.translate(_URL_SAFE)
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        raise InvalidParamsError(f"{name} is not base64: encode the bytes with the standard (or URL-safe) base64 alphabet.") from None


def from_proto(message: Message) -> Json:
    return {key: plain(value) for key, value in MessageToDict(message).items()}


def parse_params(method: str, params: Any) -> Json:
    """Validate and canonicalise the params of a 1.0 method."""
    if params is None:
        params = {}
    if method == "ListTasks":
        params = _status_filter(params)
    return check_ids(from_proto(to_proto(params, PARAM_TYPES[method](), f"params of {method}")))


def parse_request(method: str, request: Message) -> Json:
    """The params of a 1.0 method that came as a protobuf message (gRPC).

    Printed as JSON and put through :func:`parse_params`, so that every check the other
    bindings get (an enum number that names no value, id lengths) applies here too.
    """
    return parse_params(method, from_proto(request))


def check_ids(params: Json) -> Json:
    """Refuse a client-chosen id longer than A2A_MAX_ID_LENGTH: ids become Redis keys.

    ``params`` are canonical 1.0 params of any method, whichever version they came in.
    """
    limit = config_module.get().max_id_length
    message = params.get("message")
    if not isinstance(message, dict):
        message = {}
    push_config = (params.get("configuration") or {}).get("taskPushNotificationConfig") or {}
    named = {
        **{name: params.get(name) for name in ("id", "taskId", "contextId")},
        **{f"message.{name}": message.get(name) for name in ("messageId", "taskId", "contextId")},
        **{f"message.referenceTaskIds[{i}]": ref for i, ref in enumerate(message.get("referenceTaskIds") or [])},
        **{f"configuration.taskPushNotificationConfig.{name}": push_config.get(name) for name in ("id", "taskId")},
    }
    for name, value in named.items():
        if isinstance(value, str) and len(value) > limit:
            raise InvalidParamsError(f"{name} is {len(value)} characters long; ids may be at most {limit} (A2A_MAX_ID_LENGTH).")
    return params


def _status_filter(params: Any) -> Any:
    """Accept any spelling of the state filter, and refuse one that names no state.

    (Protobuf would quietly read an unknown enum name as "no filter".)
    """
    status = params.get("status") if isinstance(params, dict) else None
    if not isinstance(status, str) or not status:
        return params
    try:
        return {**params, "status": TaskState.parse(status).v1}
    except ValueError:
        raise InvalidParamsError(f"status {status!r} is not a task state: use one of {', '.join(s.v1 for s in TaskState)}.") from None


def parse_message(value: Any) -> Json:
    """A 1.0 Message given on its own (the HTTP+JSON binding nests it the same way)."""
    return from_proto(to_proto(value, pb.Message(), "message"))
