"""What each dashboard view shows, read through the QueueStore.

Every function reads one page from an index (or one context, or one task) and turns the
records into plain rows for the templates. Pages and live fragments share them, so the
live update of a section is exactly what a reload would show.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from queueapp import model, tracing
from queueapp.model import Json, TaskRecord
from queueapp.states import TERMINAL, TaskState
from queueapp.store import QueueStore, valid_cursor

PAGE_SIZE = 50
SEARCH_BATCH = 50
FINISHED_STATES = [s for s in TaskState if s in TERMINAL]


# ---- rows ------------------------------------------------------------------------------


def status_message(task: Json) -> str:
    return model.message_text(task.get("status", {}).get("message"))


def progress(task: Json) -> float | None:
    """The progress (0..1) an agent reported with its last status, if any."""
    msg = task.get("status", {}).get("message") or {}
    value = (msg.get("metadata") or {}).get("progress")
    return float(value) if isinstance(value, int | float) else None


def first_user_text(task: Json) -> str:
    for msg in task.get("history", []):
        if msg.get("role") == "ROLE_USER":
            return model.message_text(msg)
    return ""


def run_and_input_wait(record: TaskRecord, now_ms: int) -> tuple[int | None, int | None]:
    """How long an unfinished task has run, and apart from that, how long it has waited for input.

    A task asking for input (input-required, auth-required) stopped running at its last
    status; every claim restarts ``started_ms``, so earlier waits are never counted.
    """
    if not record.started_ms or record.finished:
        return None, None
    if record.state.is_interrupted and record.updated_ms >= record.started_ms:
        return record.updated_ms - record.started_ms, now_ms - record.updated_ms
    return now_ms - record.started_ms, None


def row(record: TaskRecord, now_ms: int | None = None) -> Json:
    """One task as a list row."""
    now_ms = now_ms or model.now_ms()
    prog = progress(record.task)
    runtime_ms, input_wait_ms = run_and_input_wait(record, now_ms)
    return {
        "id": record.id,
        "context_id": record.context_id,
        "state": record.state,
        "finished": record.finished,
        "text": first_user_text(record.task),
        "status_message": status_message(record.task),
        "progress": prog,
        "progress_pct": round(prog * 100) if prog is not None else None,
        "created_ms": record.created_ms,
        "updated_ms": record.updated_ms,
        "enqueued_ms": record.enqueued_ms,
        "started_ms": record.started_ms,
        "finished_ms": record.finished_ms,
        "runtime_ms": runtime_ms,
        "input_wait_ms": input_wait_ms,
        "age_ms": now_ms - (record.enqueued_ms or record.created_ms),
        "attempts": record.attempts,
        "worker": record.worker,
        "identity": record.identity,
        "error": record.error,
    }


# ---- overview --------------------------------------------------------------------------


async def redis_info(store: QueueStore) -> Json:
    """Version, memory and eviction policy; ``can_evict`` when keys may be evicted."""
    try:
        info = await store.server_info()
    except Exception as exc:  # fakeredis and restricted ACL users may refuse INFO
        return {"available": False, "error": str(exc)}
    policy = str(info.get("maxmemory_policy", "unknown"))
    return {
        "available": True,
        "version": info.get("redis_version", "?"),
        "used_memory_human": info.get("used_memory_human", "?"),
        "maxmemory_human": info.get("maxmemory_human", "0B"),
        "maxmemory_policy": policy,
        "can_evict": policy.startswith(("allkeys-", "volatile-")),
    }


async def overview(store: QueueStore) -> Json:
    stats = await store.stats()
    workers = sorted(stats.workers, key=lambda w: w["id"])
    return {
        "stats": stats,
        "counts": [(TaskState(s), n) for s, n in stats.by_state.items()],
        "workers": workers,
        "no_worker_warning": stats.queue_length > 0 and not workers,
        "per_minute": stats.per_minute,
        "redis": await redis_info(store),
    }


async def summary(store: QueueStore) -> Json:
    """The header counters every page shows."""
    stats = await store.stats(minutes=1)
    return {"queue_length": stats.queue_length, "active": stats.active, "workers": len(stats.workers), "paused": stats.paused}


# ---- lists -----------------------------------------------------------------------------


def parse_offset(text: str | None) -> int:
    try:
        return max(int(text or 0), 0)
    except ValueError:
        return 0


async def queue(store: QueueStore, offset: int) -> Json:
    page = await store.queue_page(offset, PAGE_SIZE)
    now = model.now_ms()
    rows = [{**row(r, now), "position": offset + i + 1} for i, r in enumerate(page.items)]
    prev = str(max(offset - PAGE_SIZE, 0)) if offset > 0 else ""
    return {"rows": rows, "total": page.total, "next": page.next_cursor, "prev": prev, "offset": offset}


async def active(store: QueueStore, cursor: str, owner: str = "") -> Json:
    page = await store.active_tasks(cursor=cursor, limit=PAGE_SIZE, owner=owner or None)
    now = model.now_ms()
    return {"rows": [row(r, now) for r in page.items], "total": page.total, "next": page.next_cursor, "cursor": cursor}


def parse_cursor(text: str | None) -> str:
    """A list cursor from a query parameter; one the store did not issue means the first page."""
    return text if text and valid_cursor(text) else ""


def parse_owner(text: str | None) -> str:
    """An owner filter from a query parameter: an identity, or empty for every task."""
    return (text or "").strip()[:256]


def parse_state(text: str | None) -> TaskState | None:
    """A finished state from a query parameter; anything else means no filter."""
    if not text:
        return None
    try:
        state = TaskState.parse(text)
    except ValueError:
        return None
    return state if state in TERMINAL else None


def _matches(record: TaskRecord, needle: str) -> bool:
    """Case-insensitive match against the text of every message and text artifact."""
    task = record.task
    texts = [model.message_text(m) for m in task.get("history", [])]
    texts.append(status_message(task))
    for artifact in task.get("artifacts", []):
        texts.extend(p["text"] for p in artifact.get("parts", []) if isinstance(p.get("text"), str))
    return any(needle in t.casefold() for t in texts)


@dataclass
class Search:
    rows: list[Json] = field(default_factory=list)
    total: int = 0
    next: str = ""
    scanned: int = 0
    exact: str = ""  # "task" or "context" when the query is an id


async def history(store: QueueStore, state: TaskState | None, cursor: str, query: str, scan_limit: int, owner: str = "") -> Search:
    """Finished tasks newest first; with a query, an id lookup or a bounded text search.

    An id of a task or a context is looked up directly (one read). Otherwise the history
    index is read newest first, one page at a time, and at most ``scan_limit`` tasks are
    examined per request; ``next`` continues the scan where it stopped. With ``owner``, the
    list and the text search read that identity's own history indexes.
    """
    now = model.now_ms()
    query = query.strip()
    if not query:
        page = await store.history(state=state, cursor=cursor, limit=PAGE_SIZE, owner=owner or None)
        return Search([row(r, now) for r in page.items], page.total, page.next_cursor)
    if not cursor:
        record = await store.get(query)
        if record is not None:
            return Search([row(record, now)], 1, exact="task")
        by_context = await store.list_tasks(context_id=query, limit=PAGE_SIZE)
        if by_context.items:
            return Search([row(r, now) for r in by_context.items], by_context.total, exact="context")
    needle = query.casefold()
    found = Search()
    while found.scanned < scan_limit and len(found.rows) < PAGE_SIZE:
        page = await store.history(state=state, cursor=cursor, limit=SEARCH_BATCH, owner=owner or None)
        found.total = page.total
        found.scanned += len(page.items)
        found.rows.extend(row(r, now) for r in page.items if _matches(r, needle))
        cursor = page.next_cursor
        if not cursor:
            break
    found.next = cursor
    return found


async def contexts(store: QueueStore, offset: int) -> Json:
    page = await store.list_contexts(cursor=str(offset) if offset else "", limit=PAGE_SIZE)
    prev = str(max(offset - PAGE_SIZE, 0)) if offset > 0 else ""
    return {"rows": page.items, "total": page.total, "next": page.next_cursor, "prev": prev, "offset": offset}


# ---- one context, one task ---------------------------------------------------------------


def part_view(part: Json, task_id: str, ref: str) -> Json:
    """A part as the templates show it: text, data (pretty JSON), a link or a download."""
    view: Json = {"media_type": part.get("mediaType", ""), "filename": part.get("filename", "")}
    if isinstance(part.get("text"), str):
        view.update(kind="text", text=part["text"])
    elif "data" in part:
        view.update(kind="data", json=pretty(part["data"]))
    elif "url" in part:
        url = str(part["url"])
        view.update(kind="url", url=url, safe=url.lower().startswith(("http://", "https://")))
    elif "raw" in part:
        view.update(kind="raw", ref=ref, size=len(str(part["raw"])) * 3 // 4)
    else:
        view.update(kind="unknown", json=pretty(part))
    return view


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def decode_raw(value: Any) -> bytes | None:
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError):
        return None


def message_view(msg: Json, task_id: str, ref_prefix: str) -> Json:
    role = "user" if msg.get("role") == "ROLE_USER" else "agent"
    parts = [part_view(p, task_id, f"{ref_prefix}.{i}") for i, p in enumerate(msg.get("parts", []))]
    return {"role": role, "parts": parts, "id": msg.get("messageId", "")}


def artifact_views(task: Json) -> list[Json]:
    views = []
    for a_index, artifact in enumerate(task.get("artifacts", [])):
        parts = [part_view(p, task["id"], f"a{a_index}.{p_index}") for p_index, p in enumerate(artifact.get("parts", []))]
        views.append({"id": artifact.get("artifactId", ""), "name": artifact.get("name", ""), "description": artifact.get("description", ""), "parts": parts})
    return views


def raw_part(task: Json, ref: str) -> tuple[bytes, Json] | None:
    """The bytes and part of a raw (file) part named by ``a<artifact>.<part>`` or ``m<message>.<part>``."""
    try:
        kind, (first, second) = ref[0], map(int, ref[1:].split("."))
        container = task.get("artifacts", []) if kind == "a" else task.get("history", []) if kind == "m" else None
        part = container[first]["parts"][second] if container is not None else None
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    if not isinstance(part, dict) or "raw" not in part:
        return None
    data = decode_raw(part["raw"])
    return (data, part) if data is not None else None


def _status_entry(state: str, timestamp: str | None, text: str, ms: int | None = None) -> Json:
    return {"kind": "status", "state": TaskState.parse(state), "timestamp": timestamp, "ms": ms, "text": text}


def _event_ms(event_id: str) -> int:
    """When an event was stored: the first half of its id, 'ms-n'."""
    return int(event_id.partition("-")[0])


def fold(entries: list[Json]) -> list[Json]:
    """Consecutive status updates of one state become one row showing the latest.

    The row keeps the updates it stands for (oldest first) in ``earlier``, for the page to
    show on demand: a ``sleep 30`` task has a handful of rows, not one per progress tick.
    """
    rows: list[Json] = []
    for entry in entries:
        last = rows[-1] if rows else None
        if last and entry["kind"] == "status" and last["kind"] == "status" and last["state"] == entry["state"]:
            rows[-1] = {**entry, "earlier": [*last.get("earlier", []), {k: v for k, v in last.items() if k != "earlier"}]}
        else:
            rows.append(entry)
    return rows


async def task_timeline(store: QueueStore, record: TaskRecord) -> list[Json]:
    """The status changes of a task, oldest first, with consecutive updates of a state folded.

    The task's events hold every change while they are kept (A2A_EVENTS_TTL after the
    task ends); after that the timeline is rebuilt from the task's own timestamps. Artifact
    and reply rows carry the time their event was stored (the first half of its id).
    """
    entries: list[Json] = []
    for entry_id, event in await store.read_events(record.id, count=500):
        update = event.get("statusUpdate") or (event.get("task") or {})
        status = update.get("status")
        ms = _event_ms(entry_id)
        if status:
            entries.append(_status_entry(status["state"], status.get("timestamp"), model.message_text(status.get("message")), ms))
        elif "artifactUpdate" in event:
            art = event["artifactUpdate"]["artifact"]
            entries.append({"kind": "artifact", "name": art.get("name") or art.get("artifactId", ""), "append": event["artifactUpdate"].get("append", False), "ms": ms})
        elif "message" in event:
            entries.append({"kind": "reply", "text": model.message_text(event["message"]), "ms": ms})
    if entries:
        return fold(entries)
    fallback = [_status_entry("submitted", None, "", record.created_ms)]
    if record.started_ms:
        fallback.append(_status_entry("working", None, "", record.started_ms))
    status = record.task.get("status", {})
    if record.state is not TaskState.SUBMITTED:
        fallback.append(_status_entry(status.get("state", record.state.value), status.get("timestamp"), status_message(record.task)))
    return fallback


async def task_detail(store: QueueStore, record: TaskRecord) -> Json:
    task = record.task
    return {
        "record": record,
        "row": row(record),
        "messages": [message_view(m, record.id, f"m{i}") for i, m in enumerate(task.get("history", []))],
        "artifacts": artifact_views(task),
        "timeline": await task_timeline(store, record),
        "metadata": pretty(task["metadata"]) if task.get("metadata") else "",
        "raw_json": pretty(task),
        "trace_id": tracing.trace_id(record.trace),  # to look the task up in a tracing back-end
    }


async def context_detail(store: QueueStore, context_id: str) -> Json:
    """The conversation across a context's tasks, oldest first."""
    # The context index is ordered by last change; a conversation reads in creation order.
    records = sorted(await store.context_tasks(context_id), key=lambda r: (r.created_ms, r.id))
    tasks = []
    for record in records:
        task = record.task
        status = task.get("status", {})
        tasks.append(
            {
                "row": row(record),
                "messages": [message_view(m, record.id, f"m{i}") for i, m in enumerate(task.get("history", []))],
                "artifacts": artifact_views(task),
                "status_text": status_message(task),
                "status_timestamp": status.get("timestamp", ""),
            }
        )
    return {"context_id": context_id, "owner": await store.context_owner(context_id), "tasks": tasks}
