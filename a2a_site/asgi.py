"""ASGI entry point: HTTP to Django (machine paths without browser middleware), WebSocket to the dashboard."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from a2a_site.handlers import MachineASGIHandler, MachineHandler, PathRouter  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from queueapp.protocol.limits import BodyLimitMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(PathRouter(MachineHandler(MachineASGIHandler()), ASGIStaticFilesHandler(django_http))),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
