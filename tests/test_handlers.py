"""The machine handler skips Django's per-request housekeeping; the browser handler keeps it."""

from __future__ import annotations

from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections

from a2a_site.handlers import MachineASGIHandler
from queueapp.protocol.urls import is_machine_path


def receivers_for(signal, sender) -> list:
    return [receiver for receiver in signal._live_receivers(sender)[0]]


def test_database_housekeeping_runs_for_browser_requests_only():
    MachineASGIHandler()
    MachineASGIHandler()  # a second instance changes nothing more
    for signal in (signals.request_started, signals.request_finished):
        assert close_old_connections in receivers_for(signal, ASGIHandler)
        assert close_old_connections not in receivers_for(signal, MachineASGIHandler)
        assert receivers_for(signal, ASGIHandler).count(close_old_connections) == 1


def test_machine_paths_are_the_protocol_health_and_metrics():
    for path in ("/a2a", "/.well-known/agent-card.json", "/message:send", "/tasks", "/tasks/1:cancel", "/v1/tasks", "/health", "/metrics"):
        assert is_machine_path(path), path
    for path in ("/", "/dashboard/", "/accounts/login/", "/admin/", "/static/dashboard/live.js"):
        assert not is_machine_path(path), path
