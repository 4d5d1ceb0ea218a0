"""First start: an admin user with a password from the setting or generated and printed once."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model

from dashboard.setup import ensure_admin_user

pytestmark = pytest.mark.django_db


def test_generated_password_is_printed_once_and_works(config):
    out = io.StringIO()
    password = ensure_admin_user(out)
    printed = re.search(r"user 'admin', password '([^']+)'", out.getvalue())
    assert printed and printed.group(1) == password and len(password) >= 12
    assert authenticate(username="admin", password=password).is_superuser
    again = io.StringIO()
    assert ensure_admin_user(again) is None and again.getvalue() == ""


def test_generated_passwords_differ_between_installations(config):
    first = ensure_admin_user(io.StringIO())
    get_user_model().objects.all().delete()
    assert ensure_admin_user(io.StringIO()) != first


def test_password_from_the_setting_is_used_and_not_printed(set_config):
    set_config(dashboard_admin_password="chosen-password-1")
    out = io.StringIO()
    ensure_admin_user(out)
    assert "chosen-password-1" not in out.getvalue() and "A2A_DASHBOARD_ADMIN_PASSWORD" in out.getvalue()
    assert authenticate(username="admin", password="chosen-password-1") is not None


def test_an_existing_superuser_is_left_alone(config):
    get_user_model().objects.create_superuser("root", "", "pw-of-root-123")
    assert ensure_admin_user(io.StringIO()) is None
    assert not get_user_model().objects.filter(username="admin").exists()


def test_the_setting_given_after_the_first_start_is_said_to_change_nothing(set_config):
    # Before, it was ignored without a word: the operator believed the new password was set.
    ensure_admin_user(io.StringIO())
    set_config(dashboard_admin_password="a-new-password-2")
    out = io.StringIO()
    assert ensure_admin_user(out) is None
    assert "used on the first start only" in out.getvalue() and "changepassword admin" in out.getvalue()
    assert "a-new-password-2" not in out.getvalue() and authenticate(username="admin", password="a-new-password-2") is None
    # Left in .env from the first start, the setting is the admin's password: nothing to say.
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("a-new-password-2")
    admin.save()
    quiet = io.StringIO()
    assert ensure_admin_user(quiet) is None and quiet.getvalue() == ""
