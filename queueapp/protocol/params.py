"""Reading a request's parameters: required ids, history lengths, timestamps, nesting depth and accepted output modes.

Each check raises :class:`InvalidParamsError` with a sentence the client can act on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from queueapp.model import Json, TaskRecord
from queueapp.protocol.errors import InvalidParamsError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# How deeply a data part or metadata may nest: deeper values pass the 1.0 parser but break
# the 0.3 conversion (protobuf's depth limit), so one such task would fail every 0.3 read.
MAX_DATA_DEPTH = 24


def required_id(params: Json, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidParamsError(f"'{name}' is required: the id of the task.")
    return value


def read_history_length(params: Json, cap: int) -> int | None:
    value = params.get("historyLength")
    if value is None:
        return None
    if value < 0:
        raise InvalidParamsError(f"historyLength must be 0 or more, not {value}.")
    return min(int(value), cap)


def shape_task(task: Json, history_length: int | None, cap: int, include_artifacts: bool = True) -> Json:
    """The task as a client asked for it: the last N messages, artifacts or not."""
    shaped = dict(task)
    history = shaped.get("history") or []
    keep = cap if history_length is None else min(history_length, cap)
    if keep == 0 or not history:
        shaped.pop("history", None)
    else:
        shaped["history"] = history[-keep:]
    if not include_artifacts:
        shaped.pop("artifacts", None)
    return shaped


def parse_timestamp_ms(text: str) -> int:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise InvalidParamsError(f"statusTimestampAfter {text!r} is not an ISO 8601 timestamp.") from None


def nesting(value: Any) -> int:
    """How many levels of objects and lists ``value`` holds (iterative: the value is untrusted)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_depth(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if value is not None and nesting(value) > MAX_DATA_DEPTH:
            raise InvalidParamsError(f"{name} nests {nesting(value)} levels deep; at most {MAX_DATA_DEPTH} levels of objects and lists are accepted.")


def accepts_media_type(accepted: tuple[str, ...], media_type: str) -> bool:
    kind = media_type.split(";", 1)[0].strip().lower()
    for mode in accepted:
        mode = mode.lower()
        if mode in ("*/*", kind) or (mode.endswith("/*") and kind.startswith(mode[:-1])):
            return True
    return False


def status_time_ms(record: TaskRecord) -> int:
    stamp = record.task.get("status", {}).get("timestamp")
    return parse_timestamp_ms(stamp) if stamp else record.updated_ms
