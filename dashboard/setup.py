"""First-start set-up: make sure someone can log in to the dashboard."""

from __future__ import annotations

import secrets
from io import TextIOBase
from typing import TYPE_CHECKING, cast

from django.contrib.auth import get_user_model

from queueapp import config

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ADMIN_USERNAME = "admin"


def ensure_admin_user(stdout: TextIOBase) -> str | None:
    """Create the ``admin`` superuser when no superuser exists yet.

    The password comes from A2A_DASHBOARD_ADMIN_PASSWORD, or is generated and printed
    once (it is never stored in clear anywhere). There is no fixed default password.
    Returns the password it set, or None when a superuser already existed.
    """
    users = cast("type[User]", get_user_model())  # Django's own: the project sets no AUTH_USER_MODEL
    if users.objects.filter(is_superuser=True).exists():
        wanted = config.get().dashboard_admin_password
        admin = users.objects.filter(username=ADMIN_USERNAME).first()
        if wanted and admin is not None and not admin.check_password(wanted):
            # Said, not done: a setting must not overwrite a password someone chose since.
            stdout.write(
                "A2A_DASHBOARD_ADMIN_PASSWORD is not the admin's password: it is used on the first start only; "
                f"change the password with `python manage.py changepassword {ADMIN_USERNAME}`\n"
            )
        return None
    password = config.get().dashboard_admin_password
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    if users.objects.filter(username=ADMIN_USERNAME).exists():
        user = users.objects.get(username=ADMIN_USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
    else:
        users.objects.create_superuser(ADMIN_USERNAME, "", password)
    if generated:
        stdout.write(
            f"Dashboard login created: user '{ADMIN_USERNAME}', password '{password}' (shown once; "
            "set A2A_DASHBOARD_ADMIN_PASSWORD before the first start to choose it)\n"
        )
    else:
        stdout.write(f"Dashboard login created: user '{ADMIN_USERNAME}', password from A2A_DASHBOARD_ADMIN_PASSWORD\n")
    stdout.flush()
    return password
