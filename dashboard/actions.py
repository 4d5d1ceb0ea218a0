"""Staff actions: cancel, retry, delete, purge, pause and resume, and bulk forms.

Each is a POST (CSRF-checked by the middleware) through :func:`access.staff_action`,
goes through the QueueStore, and is logged with the user who did it. A destructive action
(delete, single or bulk; purge) first answers a confirmation page whose form posts again
with ``confirm=yes``: it works without JavaScript.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from dashboard import queries
from dashboard.access import DashboardRequest, refuse, staff_action, viewer
from queueapp.services import get_store
from queueapp.states import TaskState
from queueapp.store import Conflict, InvalidTransition, QueueStore, StoreError, TaskNotCancelable, TaskNotFound

log = logging.getLogger("dashboard.actions")

# One table from store errors to HTTP statuses.
ERROR_STATUS: dict[type[StoreError], int] = {TaskNotFound: 404, TaskNotCancelable: 409, InvalidTransition: 409, Conflict: 409}
MAX_BULK = 500
PURGE_BATCH = 200

Action = Callable[[QueueStore, str], Awaitable[None]]


async def _cancel(store: QueueStore, task_id: str) -> None:
    await store.request_cancel(task_id, "Canceled from the dashboard")


async def _retry(store: QueueStore, task_id: str) -> None:
    await store.retry(task_id)


async def _delete(store: QueueStore, task_id: str) -> None:
    await store.delete(task_id, only_finished=True)


ACTIONS: dict[str, Action] = {"cancel": _cancel, "retry": _retry, "delete": _delete}
DONE = {"cancel": "Cancel requested for", "retry": "Requeued", "delete": "Deleted"}
# Actions that lose data for good ask first. Cancel does not: a canceled task keeps its
# input and can be retried.
CONFIRM = {"delete"}


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _who(request: DashboardRequest) -> str:
    return request.dashboard_user.get_username()


def _unconfirmed(request: HttpRequest, action: str) -> bool:
    return action in CONFIRM and request.POST.get("confirm") != "yes"


def _away_from(request: HttpRequest, ids: list[str], default: str) -> str:
    """Where to go after deleting ``ids``: ``next``, unless it is the page of a task now gone."""
    target = _next_url(request, default)
    gone = {reverse("dashboard:task", args=[task_id]) for task_id in ids}
    return reverse("dashboard:history") if target.split("?")[0] in gone else target


async def _confirm(request: DashboardRequest, action: str, ids: list[str], formaction: str) -> HttpResponse:
    """The confirmation page: what will go, and a form that posts the same action again, confirmed."""
    back = _next_url(request, reverse("dashboard:history"))  # "keep" goes back; a delete then leaves a gone task's page
    context = {"action": action, "ids": ids, "formaction": formaction, "next": back, "dashboard_user": request.dashboard_user, "can_act": True}
    return await sync_to_async(render)(request, "dashboard/confirm.html", context)


@staff_action
async def task_action(request: DashboardRequest, action: str, task_id: str) -> HttpResponse:
    if action not in ACTIONS:
        return await refuse(request, f"Unknown action {action!r}; expected one of {', '.join(ACTIONS)}.", 404)
    if _unconfirmed(request, action):
        return await _confirm(request, action, [task_id], request.path)
    store = await get_store()
    try:
        await ACTIONS[action](store, task_id)
    except StoreError as exc:
        log.info("Dashboard action refused, user=%s, action=%s, task_id=%s, reason=%s", _who(request), action, task_id, exc)
        return await refuse(request, f"Could not {action} task {task_id}: {exc}.", ERROR_STATUS.get(type(exc), 409))
    log.info("Dashboard action, user=%s, action=%s, task_id=%s", _who(request), action, task_id)
    messages.success(request, f"{DONE[action]} task {task_id}.")
    if action == "delete":
        return HttpResponseRedirect(_away_from(request, [task_id], reverse("dashboard:history")))
    return HttpResponseRedirect(_next_url(request, reverse("dashboard:task", args=[task_id])))


@staff_action
async def bulk_action(request: DashboardRequest, action: str) -> HttpResponse:
    ids = list(dict.fromkeys(i.strip() for i in request.POST.getlist("ids") if i.strip()))
    if action not in ACTIONS:
        return await refuse(request, f"Unknown action {action!r}; expected one of {', '.join(ACTIONS)}.", 404)
    if not ids:
        return await refuse(request, "Select at least one task first.", 400)
    if len(ids) > MAX_BULK:
        return await refuse(request, f"At most {MAX_BULK} tasks at a time; {len(ids)} were selected.", 400)
    if _unconfirmed(request, action):
        return await _confirm(request, action, ids, request.path)
    store = await get_store()
    done, failed = 0, []
    for task_id in ids:
        try:
            await ACTIONS[action](store, task_id)
            done += 1
        except StoreError as exc:
            failed.append(f"{task_id}: {exc}")
    log.info("Dashboard bulk action, user=%s, action=%s, done=%s, refused=%s, task_ids=%s", _who(request), action, done, len(failed), ",".join(ids))
    messages.success(request, f"{DONE[action]} {done} task(s).")
    if failed:
        messages.warning(request, f"{len(failed)} refused: " + "; ".join(failed[:10]))
    return HttpResponseRedirect(_away_from(request, ids, reverse("dashboard:overview")))


@staff_action
async def pause(request: DashboardRequest) -> HttpResponse:
    paused = request.POST.get("paused") == "1"
    store = await get_store()
    await store.pause(paused)
    log.info("Dashboard action, user=%s, action=%s", _who(request), "pause" if paused else "resume")
    messages.success(request, "Queue paused: workers stop claiming new tasks." if paused else "Queue resumed.")
    return HttpResponseRedirect(_next_url(request, reverse("dashboard:overview")))


def _purge_state(text: str | None) -> TaskState | None:
    return queries.parse_state(text)


@viewer
async def purge_confirm(request: DashboardRequest) -> HttpResponse:
    """GET: say how many tasks a purge would delete. Changes nothing."""
    state = _purge_state(request.GET.get("state"))
    if state is None:
        return await refuse(request, "Choose a finished state to purge: completed, failed, canceled or rejected.", 400)
    if not request.can_act:
        return await refuse(request, "Only staff users may purge the history, and not in read-only mode.", 403)
    store = await get_store()
    count = (await store.history(state=state, limit=1)).total
    context = {"state": state, "count": count, "dashboard_user": request.dashboard_user, "can_act": True}
    return await sync_to_async(render)(request, "dashboard/purge_confirm.html", context)


@staff_action
async def purge(request: DashboardRequest) -> HttpResponse:
    state = _purge_state(request.POST.get("state"))
    if state is None:
        return await refuse(request, "Choose a finished state to purge: completed, failed, canceled or rejected.", 400)
    store = await get_store()
    removed = 0
    while True:
        page = await store.history(state=state, limit=PURGE_BATCH)
        batch_removed = 0
        for record in page.items:
            try:
                await store.delete(record.id, only_finished=True)
                batch_removed += 1
            except StoreError:
                pass  # retried or deleted meanwhile: no longer this state's history
        removed += batch_removed
        if len(page.items) < PURGE_BATCH or not batch_removed:
            break
    log.info("Dashboard action, user=%s, action=purge, state=%s, removed=%s", _who(request), state.value, removed)
    messages.success(request, f"Purged {removed} {state.label} task(s) from the history.")
    return HttpResponseRedirect(reverse("dashboard:history"))
