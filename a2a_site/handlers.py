"""Two Django request handlers: one for browsers, one for machines.

The dashboard needs sessions, CSRF, authentication and messages. The A2A endpoint,
``/health`` and ``/metrics`` use none of them (they authenticate with tokens), yet
every middleware that is not async-native costs a hop to a thread and back on each
request. Requests to machine paths therefore go to a handler without middleware, which
roughly doubles what one process can take on the A2A endpoint (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from django.core import signals
from django.core.cache import close_caches
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, reset_queries

from queueapp.protocol.urls import is_machine_path


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
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)


class PathRouter:
    """Send machine paths to the lean handler and everything else to the full one."""

    def __init__(self, machines: Any, browsers: Any):
        self.machines = machines
        self.browsers = browsers

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        app = self.machines if is_machine_path(scope.get("path", "")) else self.browsers
        await app(scope, receive, send)
