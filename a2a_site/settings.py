"""Django settings. Every A2A_* value comes from queueapp.config, validated once."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from queueapp import config as a2a_config
from queueapp.connection import channel_layers
from queueapp.datadir import read_or_create_secret
from queueapp.startup import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

try:
    A2A = a2a_config.get()
    A2A_CONFIG_ERROR = None
except a2a_config.ConfigError as exc:
    # Keep Django importable so that the commands can report the error in one line.
    A2A_CONFIG_ERROR = str(exc)
    A2A = a2a_config.load({})

DATA_DIR = Path(A2A.data_dir)


SECRET_KEY = A2A.secret_key or read_or_create_secret(DATA_DIR / "secret_key")
DEBUG = A2A.debug
ALLOWED_HOSTS = list(A2A.allowed_hosts)

# A worker (`manage.py runworker`) serves no page and reads no database. The web side's
# apps would only delay its first claim: daphne installs Twisted's reactor as its app
# loads, and the admin, auth and sessions pull in Django's ORM, forms and templates.
WORKER_PROCESS = sys.argv[1:2] == ["runworker"]

WEB_APPS = [
    "daphne",
    # Before "channels": both ship a runworker command, and the earlier app's wins.
    "queueapp",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "dashboard",
]

INSTALLED_APPS = ["queueapp"] if WORKER_PROCESS else WEB_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "a2a_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "a2a_site.asgi.application"
WSGI_APPLICATION = None

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "OPTIONS": {"timeout": 20},
    }
}


# Cross-process messages only: a change this process heard on the notify channel reaches
# its dashboard consumers directly (dashboard/live.py).
CHANNEL_LAYERS = channel_layers(A2A)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

def _email(url: str) -> dict[str, str | int | bool | None]:
    """Django's mail settings from A2A_EMAIL_URL; unset, nothing is ever sent."""
    parts = urlsplit(url)
    if not url:
        return {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
    if parts.scheme == "file":  # each mail a file in the folder: for development and tests
        return {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": parts.path}
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": parts.port or {"smtps": 465, "smtp+tls": 587}.get(parts.scheme, 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": parts.scheme == "smtp+tls",
        "EMAIL_USE_SSL": parts.scheme == "smtps",
        "EMAIL_TIMEOUT": 10,
    }


globals().update(_email(A2A.email_url))
DEFAULT_FROM_EMAIL = A2A.email_from or "webmaster@localhost"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LOGGING = logging_config(A2A.debug)

logging.captureWarnings(True)
