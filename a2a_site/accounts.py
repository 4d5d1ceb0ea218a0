"""The dashboard's account pages: log in and out, change the password, and reset it by mail.

Password reset is offered only where it can work and cannot be turned against users: mail
must be configured (A2A_EMAIL_URL), and the link in the mail must point at this server.
That link is built from A2A_PUBLIC_URL when set, else from the request's Host header, which
Django checks against A2A_ALLOWED_HOSTS; with ``*`` there, anyone could choose the link's
host (and collect the reset token), so then reset is not offered.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth
from django.http import HttpResponseBase
from django.urls import URLPattern, path

from queueapp.config import Config


def offers_password_reset(cfg: Config) -> bool:
    return bool(cfg.email_url) and (bool(cfg.public_url) or "*" not in cfg.allowed_hosts)


def _reset_view(cfg: Config) -> Callable[..., HttpResponseBase]:
    public = urlsplit(cfg.public_url)
    if not public.netloc:
        return auth.PasswordResetView.as_view()
    # The mail's link is {protocol}://{domain}/accounts/reset/...; a path in the public url
    # (a proxy's prefix) belongs in front of it.
    where = {"protocol": public.scheme, "domain": public.netloc + public.path.rstrip("/"), "site_name": public.netloc}
    return auth.PasswordResetView.as_view(extra_email_context=where)


def urlpatterns() -> list[URLPattern]:
    # The settings' copy: a bad configuration must still let the URLconf import, so that the
    # command reports it in one line (queueapp.management.base.load_config).
    cfg = settings.A2A
    offered = offers_password_reset(cfg)
    patterns = [
        path("login/", auth.LoginView.as_view(extra_context={"password_reset": offered}), name="login"),
        path("logout/", auth.LogoutView.as_view(), name="logout"),
        path("password_change/", auth.PasswordChangeView.as_view(), name="password_change"),
        path("password_change/done/", auth.PasswordChangeDoneView.as_view(), name="password_change_done"),
    ]
    if offered:
        patterns += [
            path("password_reset/", _reset_view(cfg), name="password_reset"),
            path("password_reset/done/", auth.PasswordResetDoneView.as_view(), name="password_reset_done"),
            path("reset/<uidb64>/<token>/", auth.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
            path("reset/done/", auth.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
        ]
    return patterns
