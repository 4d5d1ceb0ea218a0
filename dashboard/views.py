"""The dashboard's pages: server-rendered, readable without JavaScript, enhanced by htmx."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard import queries, sections
from dashboard.access import DashboardRequest, viewer
from queueapp import config
from queueapp.services import get_store


def _params(request: HttpRequest, **extra: str) -> dict[str, str]:
    return {**{k: values[-1] for k, values in request.GET.lists()}, **extra}


def _chrome(request: DashboardRequest) -> dict[str, Any]:
    """What the base template needs on every page."""
    cfg = config.get()
    return {
        "dashboard_user": request.dashboard_user,
        "can_act": request.can_act,
        "read_only": cfg.dashboard_read_only,
        "public": cfg.dashboard_public,
        "max_fps": cfg.dashboard_max_fps,
        "oob": False,
    }


async def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    # Rendered in a thread: the auth and messages context processors may touch the
    # session and the database, which Django allows only from synchronous code.
    return await sync_to_async(render)(request, template, context, status=status)


async def _page(request: DashboardRequest, page: str, **extra: str) -> HttpResponse:
    params = _params(request, **extra)
    store = await get_store()
    context = {**_chrome(request), **sections.page_context(page, params), **await sections.load(store, sections.PAGES[page], params)}
    return await _render(request, f"dashboard/{page}.html", context)


@viewer
async def page(request: DashboardRequest, page: str) -> HttpResponse:
    """A list page (overview, queue, active, history, contexts); ``page`` comes from the URL conf."""
    return await _page(request, page)


@viewer
async def context(request: DashboardRequest, context_id: str) -> HttpResponse:
    store = await get_store()
    if not await store.context_tasks(context_id, limit=1):
        raise Http404(f"No context {context_id}")
    return await _page(request, "context", id=context_id)


@viewer
async def task(request: DashboardRequest, task_id: str) -> HttpResponse:
    store = await get_store()
    if await store.get(task_id) is None:
        raise Http404(f"No task {task_id}")
    return await _page(request, "task", id=task_id)


def attachment(filename: str) -> str:
    """A Content-Disposition header (RFC 6266) for a filename chosen by a client or an agent.

    Line and paragraph separators, controls and format characters (CR/LF, U+2028, bidi
    overrides) become ``_``: they break or forge the header. The name goes in
    ``filename*`` as UTF-8, with an ASCII ``filename`` for clients that do not read it.
    """
    name = "".join("_" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in filename).strip() or "download"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace("\\", "_").replace('"', "_") or "download"
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@viewer
async def task_part(request: DashboardRequest, task_id: str, ref: str) -> HttpResponse:
    """Download a file (raw) part of a task. Always an attachment, never rendered inline."""
    store = await get_store()
    record = await store.get(task_id)
    found = queries.raw_part(record.task, ref) if record else None
    if found is None:
        raise Http404("No such file part")
    data, part = found
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = attachment(str(part.get("filename") or f"{task_id}-{ref}.bin"))
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


@viewer
async def live(request: DashboardRequest) -> HttpResponse:
    """The watched page's live sections as out-of-band fragments: the polling fallback."""
    params = _params(request)
    page = params.get("page", "overview")
    if page not in sections.PAGES:
        return HttpResponse(f"Unknown page {page!r}; expected one of {', '.join(sections.PAGES)}", status=400, content_type="text/plain")
    store = await get_store()
    html = await sections.render_fragments(store, page, params, {"can_act": request.can_act, "read_only": config.get().dashboard_read_only})
    return HttpResponse(html)
