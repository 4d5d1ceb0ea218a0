"""Routes of the A2A endpoint: the card, JSON-RPC at /a2a, HTTP+JSON at the root (1.0) and /v1 (0.3)."""

from __future__ import annotations

import re

from django.urls import URLPattern, path, re_path

from queueapp.protocol import fallback, jsonrpc, views
from queueapp.protocol.rest import route

ID = r"(?P<task_id>[^/:]+)"
CONFIG_ID = r"(?P<config_id>[^/:]+)"


def _rest(prefix: str, version: str) -> list[URLPattern]:
    return [
        re_path(rf"^{prefix}message:send$", route(version, {"POST": "SendMessage"})),
        re_path(rf"^{prefix}message:stream$", route(version, {"POST": "SendStreamingMessage"})),
        re_path(rf"^{prefix}tasks$", route(version, {"GET": "ListTasks"})),
        re_path(rf"^{prefix}tasks/{ID}$", route(version, {"GET": "GetTask"})),
        re_path(rf"^{prefix}tasks/{ID}:cancel$", route(version, {"POST": "CancelTask"})),
        re_path(rf"^{prefix}tasks/{ID}:subscribe$", route(version, {"POST": "SubscribeToTask", "GET": "SubscribeToTask"})),
        re_path(
            rf"^{prefix}tasks/{ID}/pushNotificationConfigs$",
            route(version, {"POST": "CreateTaskPushNotificationConfig", "GET": "ListTaskPushNotificationConfigs"}),
        ),
        re_path(
            rf"^{prefix}tasks/{ID}/pushNotificationConfigs/{CONFIG_ID}$",
            route(version, {"GET": "GetTaskPushNotificationConfig", "DELETE": "DeleteTaskPushNotificationConfig"}),
        ),
    ]


urlpatterns = [
    path(".well-known/agent-card.json", views.agent_card, name="agent-card"),
    path(".well-known/agent.json", views.agent_card, {"version": "0.3"}),  # where 0.3-era clients look
    path("a2a", jsonrpc.endpoint, name="a2a-jsonrpc"),
    path("a2a/", jsonrpc.endpoint),  # where clients that join paths to the card's url post
    re_path(r"^extendedAgentCard$", route("1.0", {"GET": "GetExtendedAgentCard"})),
    re_path(r"^v1/card$", route("0.3", {"GET": "GetExtendedAgentCard"})),
    *_rest("", "1.0"),
    *_rest("v1/", "0.3"),
]

# Paths served to programs, not browsers: they need no session, CSRF or login middleware.
MACHINE_PATH_PREFIXES = ("/a2a", "/.well-known/", "/message:", "/tasks", "/v1/", "/extendedAgentCard", "/health", "/metrics")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PATH_PREFIXES)


# Anything else under a machine prefix gets a JSON not-found (a2a_site/urls.py puts this last).
no_route = re_path("^(?:" + "|".join(re.escape(prefix.lstrip("/")) for prefix in MACHINE_PATH_PREFIXES) + ")", fallback.no_route)
