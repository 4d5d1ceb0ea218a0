"""Tasks, messages and events as plain dicts in A2A 1.0 JSON form.

The store keeps every task as its 1.0 JSON (camelCase, ``TASK_STATE_*``, ``ROLE_*``);
the protocol layer converts to 0.3 at the edge. These helpers build the shapes so that
nothing else hand-assembles them.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from queueapp.states import TaskState

Json = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_from_ms(ms: int | float) -> str:
    """ISO 8601 UTC with millisecond precision and a ``Z``, as A2A asks."""
    seconds, millis = divmod(int(ms), 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4)
def _iso_second(seconds: int) -> str:
    # Formatted once per second: a worker stamps every status it records, thousands a second.
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


_last_id_time = 0
_id_lock = threading.Lock()
# A child forked while another thread held the lock would wait for it forever.
os.register_at_fork(after_in_child=lambda: globals().update(_id_lock=threading.Lock()))


def new_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562): 48 bits of ms, 12 of sub-ms order, 62 random.

    The time indexes score writes in whole ms and order ties by id (``index_score`` in
    ``store/lua/_common.lua``), so ids that sort in the order they were made keep tasks
    created in the same ms in creation order. Within one process the ids strictly increase:
    the 12 bits after the ms count on within a ms, and a clock that steps back is not followed.
    """
    global _last_id_time
    with _id_lock:
        # The ms and the 12 bits together, as one number that only goes up.
        now = time.time_ns() // 1_000_000 << 12
        _last_id_time = max(now, _last_id_time + 1)
        stamp = _last_id_time
    ms, sub = stamp >> 12, stamp & 0xFFF
    value = ms << 80 | 0x7 << 76 | sub << 64 | 0b10 << 62 | int.from_bytes(os.urandom(8)) >> 2
    return str(uuid.UUID(int=value))


UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def short_id(value: str) -> str:
    """Eight characters that tell ids apart at a glance (the full id goes in a title or a link).

    A UUID's last eight hex digits: its first ones are the time in version 7 (new_id), the
    same for every id of a minute, and the last ones random in versions 4 and 7. Any other id
    (a client's own context id, say) keeps its beginning.
    """
    if UUID_TEXT.fullmatch(value):
        return value[-8:]
    return value[:8] if len(value) > 12 else value


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def text_part(text: str) -> Json:
    return {"text": text}


def message(role: str, parts: list[Json], *, task_id: str | None = None, context_id: str | None = None, message_id: str | None = None) -> Json:
    """A 1.0 Message. ``role`` is ``user`` or ``agent``."""
    msg: Json = {"messageId": message_id or new_id(), "role": "ROLE_" + role.upper(), "parts": parts}
    if task_id:
        msg["taskId"] = task_id
    if context_id:
        msg["contextId"] = context_id
    return msg


def agent_text(text: str, task_id: str | None = None, context_id: str | None = None) -> Json:
    return message("agent", [text_part(text)], task_id=task_id, context_id=context_id)


def message_text(msg: Json | None) -> str:
    """The text parts of a message joined by newlines; other parts are skipped."""
    if not msg:
        return ""
    return "\n".join(part["text"] for part in msg.get("parts", []) if isinstance(part.get("text"), str))


def status(state: TaskState, ms: int, msg: Json | None = None) -> Json:
    value: Json = {"state": state.v1, "timestamp": iso_from_ms(ms)}
    if msg is not None:
        value["message"] = msg
    return value


def new_task(task_id: str, context_id: str, user_message: Json, ms: int, metadata: Json | None = None) -> Json:
    task: Json = {
        "id": task_id,
        "contextId": context_id,
        "status": status(TaskState.SUBMITTED, ms),
        "history": [user_message],
    }
    if metadata:
        task["metadata"] = metadata
    return task


# ---- the stored form -------------------------------------------------------------------
# A task is stored as its 1.0 JSON minus what the record already says: the task's own id and
# context id (the key and the context_id field), the same ids on each message (every message
# of a task carries them), and a final status message that is also the last history message.
# That halves a small task's JSON, and the history keeps every finished task.
STATUS_MESSAGE_IN_HISTORY = "messageInHistory"


def pack_task(task: Json) -> str:
    """The stored form of ``task``: see the comment above. :func:`unpack_task` reverses it."""
    task_id, context_id = task.get("id"), task.get("contextId")
    packed = {key: value for key, value in task.items() if key not in ("id", "contextId")}
    history = [_strip_ids(m, task_id, context_id) for m in task.get("history", [])]
    if history:
        packed["history"] = history
    status_message = task.get("status", {}).get("message")
    if status_message is not None:
        packed["status"] = {**task["status"]}
        stripped = _strip_ids(status_message, task_id, context_id)
        if history and stripped == history[-1]:
            del packed["status"]["message"]
            packed["status"][STATUS_MESSAGE_IN_HISTORY] = True
        else:
            packed["status"]["message"] = stripped
    return dumps(packed)


def unpack_task(text: str | bytes, task_id: str, context_id: str, status_json: str | None = None) -> Json:
    """The 1.0 JSON of a stored task (also reads tasks stored whole).

    ``status_json`` is the status a claim recorded in a field of its own (lease.lua).
    """
    task = loads(text)
    task = {"id": task_id, "contextId": context_id, **task}
    if status_json:
        task["status"] = loads(status_json)
    history = task.get("history")
    if history:
        task["history"] = [_with_ids(m, task_id, context_id) for m in history]
    status_value = task.get("status", {})
    if status_value.pop(STATUS_MESSAGE_IN_HISTORY, False) and history:
        status_value["message"] = task["history"][-1]
    elif "message" in status_value:
        status_value["message"] = _with_ids(status_value["message"], task_id, context_id)
    return task


def _strip_ids(msg: Json, task_id: str | None, context_id: str | None) -> Json:
    if msg.get("taskId") != task_id or msg.get("contextId") != context_id:
        return msg
    return {key: value for key, value in msg.items() if key not in ("taskId", "contextId")}


def _with_ids(msg: Json, task_id: str, context_id: str) -> Json:
    if "taskId" in msg:
        return msg
    return {**msg, "taskId": task_id, "contextId": msg.get("contextId", context_id)}


def task_state(task: Json) -> TaskState:
    return TaskState.parse(task["status"]["state"])


def status_event(task: Json) -> Json:
    """The StreamResponse for the task's current status."""
    return {"statusUpdate": {"taskId": task["id"], "contextId": task["contextId"], "status": task["status"]}}


def artifact_event(task: Json, artifact: Json, append: bool, last_chunk: bool) -> Json:
    return {
        "artifactUpdate": {
            "taskId": task["id"],
            "contextId": task["contextId"],
            "artifact": artifact,
            "append": append,
            "lastChunk": last_chunk,
        }
    }


def merge_artifact(task: Json, artifact: Json, append: bool) -> None:
    """Add an artifact to the task, or append its parts to the one with the same id."""
    artifacts = task.setdefault("artifacts", [])
    if append:
        for existing in artifacts:
            if existing.get("artifactId") == artifact.get("artifactId"):
                existing["parts"] = existing.get("parts", []) + artifact.get("parts", [])
                return
    for index, existing in enumerate(artifacts):
        if existing.get("artifactId") == artifact.get("artifactId"):
            artifacts[index] = artifact
            return
    artifacts.append(artifact)


@dataclass(kw_only=True)
class TaskRecord:
    """A task as the store holds it: the A2A task plus the queue's own bookkeeping.

    Built by keyword only: sixteen fields in a row are too easy to shift by one.
    """

    id: str
    context_id: str
    state: TaskState
    task: Json
    rev: str
    attempts: int
    created_ms: int
    updated_ms: int
    enqueued_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    worker: str | None = None
    identity: str | None = None
    error: str | None = None
    finished: bool = False
    has_push_configs: bool = False
    """Whether the task had push configs at its last write (the push hook skips it otherwise)."""
    trace: str | None = None
    """The W3C traceparent of the call that created the task, when tracing was on there."""

    def history_meta(self, error: str | None = None) -> str:
        """The ``meta`` JSON a finish through this task's claim stores, except its ``rev`` and ``finished_ms``.

        These are the bookkeeping fields the create and the claim write to the active hash
        besides the history's own (HISTORY_OWN_FIELDS in finish.lua), as the claim returned
        them, and the error of a failed task. finish.lua checks that the hash holds nothing
        else (or reads it whole), and puts the revision and the finish time first, since only
        it knows them. :meth:`from_hash` reads them back.
        """
        held = {
            "attempts": self.attempts,
            "created_ms": self.created_ms,
            "enqueued_ms": self.enqueued_ms,
            "started_ms": self.started_ms,
            "worker": self.worker,
            "trace": self.trace,
            "error": error,
        }
        return dumps({name: str(value) for name, value in held.items() if value is not None})

    @classmethod
    def from_hash(cls, task_id: str, fields: dict[str, str], finished: bool) -> TaskRecord:
        if "meta" in fields:  # a finished task keeps its bookkeeping in one field (finish.lua)
            fields = {**loads(fields["meta"]), **fields}
        context_id = fields.get("context_id", "")

        def opt_int(name: str) -> int | None:
            value = fields.get(name)
            return int(value) if value else None

        return cls(
            id=task_id,
            context_id=context_id,
            state=TaskState.parse(fields.get("state", "unknown")),
            task=unpack_task(fields["task"], task_id, context_id, fields.get("status")),
            rev=fields.get("rev", "0"),
            attempts=int(fields.get("attempts", 0)),
            created_ms=int(fields.get("created_ms", 0)),
            updated_ms=int(fields.get("updated_ms") or fields.get("finished_ms") or 0),
            enqueued_ms=opt_int("enqueued_ms"),
            started_ms=opt_int("started_ms"),
            finished_ms=opt_int("finished_ms"),
            worker=fields.get("worker") or None,
            identity=fields.get("identity") or None,
            error=fields.get("error") or None,
            finished=finished,
            trace=fields.get("trace") or None,
        )
