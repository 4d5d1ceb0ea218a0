"""The live sections of each page, rendered the same way for a page load and an update.

A page is made of sections (``dashboard/partials/<name>.html``), each one element with a
stable id. A full page includes them; a live update (WebSocket or polling) renders the
watched page's sections again with ``hx-swap-oob`` so that htmx swaps them in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from django.template.loader import render_to_string

from dashboard import charts, queries
from queueapp import config
from queueapp.model import Json
from queueapp.store import QueueStore

Params = Mapping[str, str]
Loader = Callable[[QueueStore, Params], Awaitable[Json]]


async def _summary(store: QueueStore, params: Params) -> Json:
    return {"summary": await queries.summary(store)}


async def _overview(store: QueueStore, params: Params) -> Json:
    data = await queries.overview(store)
    data["charts"] = charts.build(data["per_minute"])
    return data


async def _queue(store: QueueStore, params: Params) -> Json:
    return {"queue": await queries.queue(store, queries.parse_offset(params.get("offset")))}


async def _active(store: QueueStore, params: Params) -> Json:
    owner = queries.parse_owner(params.get("owner"))
    return {"active": await queries.active(store, queries.parse_cursor(params.get("cursor")), owner), "owner_filter": owner}


async def _history(store: QueueStore, params: Params) -> Json:
    state = queries.parse_state(params.get("state"))
    query = params.get("q", "")
    cursor = queries.parse_cursor(params.get("cursor"))
    owner = queries.parse_owner(params.get("owner"))
    found = await queries.history(store, state, cursor, query, config.get().dashboard_search_scan, owner)
    return {
        "history": found, "state_filter": state.value if state else "", "q": query, "cursor": cursor,
        "finished_states": queries.FINISHED_STATES, "owner_filter": owner,
    }


async def _contexts(store: QueueStore, params: Params) -> Json:
    return {"contexts": await queries.contexts(store, queries.parse_offset(params.get("offset")))}


async def _context(store: QueueStore, params: Params) -> Json:
    return {"context": await queries.context_detail(store, params.get("id", ""))}


async def _task(store: QueueStore, params: Params) -> Json:
    record = await store.get(params.get("id", ""))
    return {"detail": await queries.task_detail(store, record) if record else None}


@dataclass(frozen=True)
class Section:
    name: str
    load: Loader


SECTIONS = {s.name: s for s in [
    Section("summary", _summary),
    Section("overview", _overview),
    Section("queue", _queue),
    Section("active", _active),
    Section("history", _history),
    Section("contexts", _contexts),
    Section("context", _context),
    Section("task", _task),
]}

# Which sections each page shows, in order.
PAGES: dict[str, list[str]] = {
    "overview": ["summary", "overview"],
    "queue": ["summary", "queue"],
    "active": ["summary", "active"],
    "history": ["summary", "history"],
    "contexts": ["summary", "contexts"],
    "context": ["summary", "context"],
    "task": ["summary", "task"],
}


def live_sections(page: str, params: Params) -> list[str]:
    """The sections a live update re-renders.

    A search result or a later page of a list stays as it is (re-running a search on every
    change would cost too much, and rows moving under the reader's eyes do not help);
    the counters in the header stay live everywhere.
    """
    names = PAGES.get(page, ["summary"])
    if page == "history" and (params.get("q") or params.get("cursor")):
        return ["summary"]
    if page in ("queue", "contexts") and queries.parse_offset(params.get("offset")):
        return ["summary"]
    if page == "active" and params.get("cursor"):
        return ["summary"]
    return names


def relevant(page: str, params: Params, tasks: list[str], contexts: list[str], everything: bool) -> bool:
    """Does a batch of changes touch what this page shows?"""
    if everything or page not in ("task", "context"):
        return True
    target = params.get("id", "")
    return target in (tasks if page == "task" else contexts)


async def load(store: QueueStore, names: list[str], params: Params) -> Json:
    context: Json = {}
    for name in names:
        context.update(await SECTIONS[name].load(store, params))
    return context


async def render_fragments(store: QueueStore, page: str, params: Params, extra: Json) -> str:
    """The page's live sections as out-of-band fragments for htmx."""
    names = live_sections(page, params)
    context = {**extra, **await load(store, names, params), "oob": True, "page": page}
    return "".join(render_to_string(f"dashboard/partials/{name}.html", context) for name in names)


def page_context(page: str, params: Params) -> Json:
    return {"page": page, "live_query": _live_query(page, params)}


def _live_query(page: str, params: Params) -> str:
    keep = {k: v for k, v in params.items() if k in ("id", "offset", "cursor", "q", "state", "owner") and v}
    return urlencode({"page": page, **keep})
