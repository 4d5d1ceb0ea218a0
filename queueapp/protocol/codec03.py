"""The 0.3 codec: 0.3 requests in, 1.0 params out; 1.0 results in, 0.3 answers out.

It leans on the SDK's own compatibility layer (``a2a.compat.v0_3``): the 0.3 pydantic
models validate JSON-RPC params, the 0.3 protobuf types read and write the 0.3
HTTP+JSON bodies, and ``conversions`` maps each shape to and from 1.0. Requests are
read leniently, as the seed's Go client writes them: 1.0-style parts, ``ROLE_*`` and
``TASK_STATE_*`` spellings are accepted; answers always use 0.3 spelling.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
import pydantic
from a2a.compat.v0_3 import a2a_v0_3_pb2 as pb03
from a2a.compat.v0_3 import conversions, proto_utils
from a2a.compat.v0_3 import types as t03
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import DecodeError

from queueapp.model import Json
from queueapp.protocol import codec
from queueapp.protocol.errors import InvalidParamsError, JSONParseError

METHODS = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/list": "ListTasks",
    "tasks/cancel": "CancelTask",
    "tasks/resubscribe": "SubscribeToTask",
    "tasks/pushNotificationConfig/set": "CreateTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigs",
    "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfig",
    "agent/getAuthenticatedExtendedCard": "GetExtendedAgentCard",
}
V1_TO_V03 = {v1: v03 for v03, v1 in METHODS.items()}
_INTERRUPTED_V03 = ("input-required", "auth-required")


# ---- leniency: 1.0 spellings inside 0.3 requests ----------------------------------------------


def _lenient_part(part: Any) -> Any:
    if not isinstance(part, dict) or "kind" in part:
        return part
    extra = {key: part[key] for key in ("metadata",) if key in part}
    file_info = {"mimeType": part.get("mediaType") or part.get("mimeType"), "name": part.get("filename") or part.get("name")}
    file_info = {key: value for key, value in file_info.items() if value}
    if "text" in part:
        return {"kind": "text", "text": part["text"], **extra}
    if "data" in part:
        return {"kind": "data", "data": part["data"], **extra}
    if "url" in part or "uri" in part:
        return {"kind": "file", "file": {"uri": part.get("url", part.get("uri")), **file_info}, **extra}
    if "raw" in part or "bytes" in part:
        return {"kind": "file", "file": {"bytes": part.get("raw", part.get("bytes")), **file_info}, **extra}
    if "file" in part:
        return {"kind": "file", **part}
    return part


def lenient_message(message: Any) -> Any:
    """Rewrite 1.0-style parts and roles of a 0.3 message into 0.3 spelling."""
    if not isinstance(message, dict):
        return message
    fixed = dict(message)
    role = fixed.get("role")
    if isinstance(role, str) and role.upper().startswith("ROLE_"):
        fixed["role"] = role[5:].lower()
    if isinstance(fixed.get("parts"), list):
        fixed["parts"] = [_lenient_part(part) for part in fixed["parts"]]
    return fixed


def _validate(model: type[pydantic.BaseModel], params: Any, method: str) -> Any:
    if not isinstance(params, dict):
        raise InvalidParamsError(f"params of {method} must be a JSON object, not {type(params).__name__}.")
    try:
        return model.model_validate(params)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()[:5])
        raise InvalidParamsError(f"Invalid params for {method}: {problems}.") from None


# ---- JSON-RPC requests ------------------------------------------------------------------------


def _send_params(params: Any, method: str) -> Json:
    if isinstance(params, dict) and "message" in params:
        params = {**params, "message": lenient_message(params["message"])}
    parsed = _validate(t03.MessageSendParams, params, method)
    return send_params_from_model(parsed)


def _check_file_bytes(message: t03.Message) -> None:
    """Refuse file bytes that are not base64: the SDK's conversion keeps what it can make out of them."""
    for index, part in enumerate(message.parts):
        file = part.root.file if isinstance(part.root, t03.FilePart) else None
        if isinstance(file, t03.FileWithBytes):
            try:
                base64.b64decode(file.bytes, validate=True)
            except binascii.Error:
                raise InvalidParamsError(f"message.parts[{index}].file.bytes is not base64: encode the file with the standard alphabet, padded.") from None


def send_params_from_model(parsed: t03.MessageSendParams) -> Json:
    _check_file_bytes(parsed.message)
    try:
        core = conversions.to_core_send_message_request(t03.SendMessageRequest(id=0, params=parsed))
    except (ValueError, TypeError, ParseError, DecodeError) as exc:  # DecodeError: data nested past protobuf's depth limit
        raise InvalidParamsError(f"Invalid message: {exc}") from None
    return codec.from_proto(core)


def _push_config_params(params: Any, method: str) -> Json:
    parsed = _validate(t03.TaskPushNotificationConfig, params, method)
    return push_config_from_model(parsed)


def push_config_from_model(parsed: t03.TaskPushNotificationConfig) -> Json:
    config = codec.from_proto(conversions.to_core_task_push_notification_config(parsed))
    config["taskId"] = parsed.task_id
    return config


def _get_push_params(params: Any, method: str) -> Json:
    parsed = _validate(t03.GetTaskPushNotificationConfigParams, params, method)
    # 0.3 allowed leaving out the config id: the task's first config is meant.
    return {"taskId": parsed.id, "id": parsed.push_notification_config_id or ""}


def _delete_push_params(params: Any, method: str) -> Json:
    parsed = _validate(t03.DeleteTaskPushNotificationConfigParams, params, method)
    return {"taskId": parsed.id, "id": parsed.push_notification_config_id}


def _list_push_params(params: Any, method: str) -> Json:
    return {"taskId": _validate(t03.ListTaskPushNotificationConfigParams, params, method).id}


def _task_query_params(params: Any, method: str) -> Json:
    parsed = _validate(t03.TaskQueryParams, params, method)
    result: Json = {"id": parsed.id}
    if parsed.history_length is not None:  # 0 means no history, as in the 0.3 REST binding and 1.0
        result["historyLength"] = parsed.history_length
    return result


def _task_id_params(params: Any, method: str) -> Json:
    return {"id": _validate(t03.TaskIdParams, params, method).id}


def _list_tasks_params(params: Any, method: str) -> Json:
    """0.3 has no tasks/list; the seed's server offers one with the 1.0 names, which we follow."""
    return codec.parse_params("ListTasks", params)


_PARAM_READERS: dict[str, Callable[[Any, str], Json]] = {
    "message/send": _send_params,
    "message/stream": _send_params,
    "tasks/get": _task_query_params,
    "tasks/list": _list_tasks_params,
    "tasks/cancel": _task_id_params,
    "tasks/resubscribe": _task_id_params,
    "tasks/pushNotificationConfig/set": _push_config_params,
    "tasks/pushNotificationConfig/get": _get_push_params,
    "tasks/pushNotificationConfig/list": _list_push_params,
    "tasks/pushNotificationConfig/delete": _delete_push_params,
    "agent/getAuthenticatedExtendedCard": lambda params, method: {},
}


def parse_params(method: str, params: Any) -> Json:
    """1.0 params from the params of a 0.3 method (``method`` is the 0.3 name)."""
    if params is None:
        params = {}
    return codec.check_ids(_PARAM_READERS[method](params, method))


# ---- results: 1.0 JSON in, 0.3 models out -----------------------------------------------------


def _dump(model: pydantic.BaseModel) -> Json:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def task_model(task: Json) -> t03.Task:
    return conversions.to_compat_task(codec.to_proto(task, pb.Task(), "task"))


def message_model(message: Json) -> t03.Message:
    return conversions.to_compat_message(codec.to_proto(message, pb.Message(), "message"))


def push_config_model(config: Json) -> t03.TaskPushNotificationConfig:
    return conversions.to_compat_task_push_notification_config(codec.to_proto(config, pb.TaskPushNotificationConfig(), "push config"))


def event_model(event: Json) -> Any:
    """The 0.3 result model of one 1.0 StreamResponse; interrupted states are final in 0.3 too."""
    result = conversions.to_compat_stream_response(codec.to_proto(event, pb.StreamResponse(), "event")).result
    if isinstance(result, t03.TaskStatusUpdateEvent) and result.status.state.value in _INTERRUPTED_V03:
        result.final = True
    return result


def jsonrpc_result(method: str, result: Any) -> Any:
    """A 1.0 handler result in the 0.3 JSON-RPC shape (``method`` is the 1.0 name)."""
    if method == "SendMessage":
        return _dump(task_model(result["task"])) if "task" in result else _dump(message_model(result["message"]))
    if method in ("GetTask", "CancelTask"):
        return _dump(task_model(result))
    if method == "ListTasks":
        return {**result, "tasks": [_dump(task_model(task)) for task in result["tasks"]]}
    if method in ("CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig"):
        return _dump(push_config_model(result))
    if method == "ListTaskPushNotificationConfigs":
        return [_dump(push_config_model(config)) for config in result["configs"]]
    return result


def jsonrpc_event(event: Json) -> Json:
    return _dump(event_model(event))


# ---- HTTP+JSON: the 0.3 protobuf JSON bodies --------------------------------------------------


def _load_body(body: bytes) -> Any:
    """The JSON of a body (an empty one is ``{}``); a body that is not JSON is a parse error."""
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JSONParseError(f"The request body is not valid JSON: {exc}.") from None


def _parse_body(sent: Any, message: Any, what: str) -> Any:
    """JSON of the right shape as the 0.3 request ``message``; any other JSON is invalid params."""
    if not isinstance(sent, dict):
        raise InvalidParamsError(f"The request body must be a JSON object (a {what}).")
    codec.check_shapes(sent, message.DESCRIPTOR, "")
    try:
        return ParseDict(sent, message, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError) as exc:
        raise InvalidParamsError(f"Invalid {what}: {exc}") from None


def rest_send_params(body: bytes) -> Json:
    request = _parse_body(_load_body(body), pb03.SendMessageRequest(), "message send request")
    try:
        parsed = proto_utils.FromProto.message_send_params(request)
    except UnicodeDecodeError:  # the SDK's clients send a file's base64 text, itself base64-encoded as proto bytes
        raise InvalidParamsError("A file part's fileWithBytes does not hold the file's base64 text.") from None
    return codec.check_ids(send_params_from_model(parsed))


# Members of the whole 0.3 CreateTaskPushNotificationConfigRequest (JSON and proto names).
_CREATE_REQUEST_FIELDS = {"parent", "configId", "config_id", "config"}


def _create_request(sent: Any) -> Any:
    """The whole 0.3 create request from what a client posted.

    The 0.3 proto maps the HTTP body to the request's ``config`` (a TaskPushNotificationConfig:
    ``name`` and ``pushNotificationConfig``), so most clients post that alone; some post the
    whole request, and a bare PushNotificationConfig (``url``, ...) is read too.
    """
    if not isinstance(sent, dict) or not sent or _CREATE_REQUEST_FIELDS.intersection(sent):
        return sent
    if "url" in sent:
        return {"config": {"pushNotificationConfig": sent}}
    return {"config": sent}


def rest_push_config_params(task_id: str, body: bytes) -> Json:
    sent = _create_request(_load_body(body))
    request = _parse_body(sent, pb03.CreateTaskPushNotificationConfigRequest(), "push notification config")
    request.parent = request.parent or f"tasks/{task_id}"  # the path names the task; the body need not repeat it
    try:
        parsed = proto_utils.FromProto.task_push_notification_config_request(request)
    except A2AError as exc:
        raise InvalidParamsError(f"Invalid push notification config: {exc.message}") from None
    parsed.task_id = task_id
    return codec.check_ids(push_config_from_model(parsed))


def rest_result(method: str, result: Any) -> Any:
    """A 1.0 handler result as the 0.3 HTTP+JSON binding writes it (protobuf JSON)."""
    to_proto = proto_utils.ToProto
    if method == "SendMessage":
        model = task_model(result["task"]) if "task" in result else message_model(result["message"])
        return MessageToDict(to_proto.task_or_message(model))
    if method in ("GetTask", "CancelTask"):
        return MessageToDict(to_proto.task(task_model(result)))
    if method == "ListTasks":
        return {**result, "tasks": [MessageToDict(to_proto.task(task_model(task))) for task in result["tasks"]]}
    if method in ("CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig"):
        return MessageToDict(to_proto.task_push_notification_config(push_config_model(result)))
    if method == "ListTaskPushNotificationConfigs":
        configs = [to_proto.task_push_notification_config(push_config_model(config)) for config in result["configs"]]
        return MessageToDict(pb03.ListTaskPushNotificationConfigResponse(configs=configs))
    return result if result is not None else {}


def rest_event(event: Json) -> Json:
    return MessageToDict(proto_utils.ToProto.stream_response(event_model(event)))
