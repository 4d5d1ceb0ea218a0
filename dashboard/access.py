"""Who may see the dashboard and who may act on it.

Seeing needs a Django login, unless A2A_DASHBOARD_PUBLIC opens it read-only to anyone.
Acting needs a logged-in staff user, a POST with a valid CSRF token, and
A2A_DASHBOARD_READ_ONLY off.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from queueapp import config

if TYPE_CHECKING:
    from django.contrib.auth.models import User

AsyncView = Callable[..., Coroutine[Any, Any, HttpResponse]]


class DashboardRequest(HttpRequest):
    """The request a view behind :func:`viewer` or :func:`staff_action` gets: who asks, and whether they may act."""

    dashboard_user: User | AnonymousUser
    can_act: bool


class Visitor(Protocol):
    """What the checks read of a user: Django's User, AnonymousUser, or channels' lazy proxy of one."""

    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def is_staff(self) -> bool: ...


async def user_of(request: HttpRequest) -> User | AnonymousUser:
    """The request's user, as Django's own User model: the project sets no AUTH_USER_MODEL."""
    return cast("User | AnonymousUser", await request.auser())


def can_view(user: Visitor | None) -> bool:
    return bool(user is not None and user.is_authenticated) or config.get().dashboard_public


def can_act(user: Visitor | None) -> bool:
    return not config.get().dashboard_read_only and bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


async def refuse(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """An error page that says what went wrong; rendered in a thread (the session may be read)."""
    context = {"message": message, "status": status, "dashboard_user": getattr(request, "dashboard_user", None)}
    return await sync_to_async(render)(request, "dashboard/error.html", context, status=status)


def _let_in(request: HttpRequest, user: User | AnonymousUser, may_act: bool) -> DashboardRequest:
    """The same request, given the two attributes a :class:`DashboardRequest` has."""
    allowed = cast(DashboardRequest, request)
    allowed.dashboard_user = user
    allowed.can_act = may_act
    return allowed


def viewer(view: AsyncView) -> AsyncView:
    """Log-in required (or the public setting); adds ``request.dashboard_user``."""

    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = await user_of(request)
        if not can_view(user):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return await view(_let_in(request, user, can_act(user)), *args, **kwargs)

    return wrapped


def staff_action(view: AsyncView) -> AsyncView:
    """POST only (CSRF is checked by the middleware), staff only, and not in read-only mode."""

    @require_POST
    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = await user_of(request)
        if config.get().dashboard_read_only:
            return await refuse(request, "The dashboard is read-only (A2A_DASHBOARD_READ_ONLY is on): actions are turned off.", 403)
        if not user.is_authenticated:
            return redirect_to_login(request.POST.get("next") or "/", settings.LOGIN_URL)
        if not can_act(user):
            return await refuse(request, "Only staff users may change tasks or the queue.", 403)
        return await view(_let_in(request, user, True), *args, **kwargs)

    return wrapped
