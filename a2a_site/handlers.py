"""Request handlers: a lean one for machines, Django's for browsers.

The dashboard needs sessions, CSRF, authentication and messages. The A2A endpoint,
``/health`` and ``/metrics`` use none of them (they authenticate with tokens), and their
views are async, so Django's per-request machinery is pure cost for them: each middleware
that is not async-native hops to a thread and back, and the ASGI handler itself starts a
thread per request to close the response (docs/performance.md). Machine paths therefore
go to :class:`MachineHandler`, which awaits their views directly.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.db import close_old_connections, reset_queries
from django.http import HttpResponse
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

from queueapp.protocol.errors import InvalidRequestError
from queueapp.protocol.fallback import as_json, error_response
from queueapp.protocol.limits import ASGIApp, Receive, Scope, Send
from queueapp.protocol.urls import is_machine_path

security_log = logging.getLogger("django.security.DisallowedHost")


def _scope_request_signals_to_browsers() -> None:
    """Run Django's per-request database and cache housekeeping for browser requests only.

    Its receivers are synchronous, so each request would hop to a thread and back for
    them; machine paths touch neither the database nor Django's caches.
    """
    for signal in (signals.request_started, signals.request_finished):
        for receiver in (reset_queries, close_old_connections, close_caches):
            if signal.disconnect(receiver):
                signal.connect(receiver, sender=ASGIHandler)


class MachineASGIHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain."""

    def __init__(self) -> None:
        super().__init__()
        _scope_request_signals_to_browsers()

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Callable[..., Any]] = []
        self._template_response_middleware: list[Callable[..., Any]] = []
        self._exception_middleware: list[Callable[..., Any]] = []
        get_response = self._get_response_async if is_async else self._get_response  # type: ignore[attr-defined]  # private to Django, not in django-stubs
        self._middleware_chain = convert_exception_to_response(get_response)


# The probes answer whatever Host a request names: orchestrators and scrapers reach a server
# by its address (a pod's IP), and what they read tells a page that rebound its name to this
# server nothing. Every other machine path checks its Host against A2A_ALLOWED_HOSTS as
# Django's middleware does for the dashboard: a page whose own name was made to resolve to
# a server on this machine must not read or make its tasks (DNS rebinding).
ANY_HOST_ROUTES = frozenset({"health", "metrics"})


class MachineHandler:
    """Serve async views straight from the event loop; hand anything else to Django.

    The path is resolved with the project's URLconf and the view gets Django's own
    ASGIRequest and has its response written by Django's code, so views cannot tell the
    difference. What is left out is what machine paths do not use: the thread-sensitive
    context (a thread started and joined per request), the request signals (their
    receivers are the browser's database housekeeping) and the response close in a thread.
    Sync views and paths with no route go to ``django``, whose answers they already were.
    """

    def __init__(self, django: MachineASGIHandler):
        self.django = django

    def _async_view(self, path: str) -> ResolverMatch | None:
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return None
        return match if iscoroutinefunction(match.func) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self._async_view(scope["path"])
        if match is None:
            await self.django(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending the whole body
        set_script_prefix(get_script_prefix(scope))
        request, refusal = self.django.create_request(scope, io.BytesIO(body))
        if refusal is not None:
            await self.django.send_response(refusal, send)
            return
        assert request is not None  # Django makes a request or a refusal
        request.resolver_match = match
        await _until_disconnect(self._respond(request, match, send), receive)

    async def _respond(self, request: ASGIRequest, match: ResolverMatch, send: Send) -> None:
        refusal = None if match.url_name in ANY_HOST_ROUTES else _host_refusal(request)
        if refusal is not None:
            await self.django.send_response(refusal, send)
            return
        try:
            response = await match.func(request, *match.args, **match.kwargs)
        except Exception as exc:  # what Django would answer: 404, 400, or 500 with the error logged
            response = await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)
        response = as_json(request, response)  # programs get their binding's JSON, never an HTML page
        try:
            await self.django.send_response(response, send)
        finally:
            # In the loop, not a thread: it signals request_finished with no sender, which the
            # browsers' database and cache housekeeping does not listen to.
            response.close()


def _host_refusal(request: ASGIRequest) -> HttpResponse | None:
    """A 400 in the path's binding form when the request's Host is not in A2A_ALLOWED_HOSTS."""
    try:
        request.get_host()
    except DisallowedHost as exc:
        security_log.warning("%s", exc)  # as Django logs it for the dashboard
        host = request.META.get("HTTP_HOST", "")
        error = InvalidRequestError(f"This server does not answer to the host {host!r}: reach it by a name in A2A_ALLOWED_HOSTS.")
        return error_response(request, error, 400)
    return None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (``BodyLimitMiddleware`` in front has capped its size)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _until_disconnect(work: Awaitable[None], receive: Receive) -> None:
    """Run ``work``, cancelling it if the client goes away first (a stream, a blocking send).

    A watcher task waits for ``http.disconnect`` while this task does the work. It cancels
    this task only while ``work`` is being awaited, so the cancellation lands nowhere else.
    """
    task = asyncio.current_task()
    assert task is not None
    working, cancelled = True, False

    async def watch() -> None:
        nonlocal cancelled
        if (await receive())["type"] == "http.disconnect" and working:
            cancelled = True
            task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        await work
    except asyncio.CancelledError:
        if not (cancelled and task.uncancel() == 0):
            raise  # the server's own cancellation (too) goes on up
    finally:
        working = False
        watcher.cancel()


class PathRouter:
    """Send machine paths to the lean handler and everything else to the full one."""

    def __init__(self, machines: ASGIApp, browsers: ASGIApp):
        self.machines = machines
        self.browsers = browsers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.machines if is_machine_path(scope.get("path", "")) else self.browsers
        await app(scope, receive, send)
