from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import path

from dashboard.consumers import DashboardConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

# channels routes ASGI applications with Django's path(), which django-stubs types for views only.
websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [path("ws/dashboard/", DashboardConsumer.as_asgi())]  # type: ignore[arg-type, list-item]
