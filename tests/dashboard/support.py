"""Helpers for the dashboard tests: logging in, sessions, submitting tasks."""

from __future__ import annotations

import re

import httpx
from asgiref.sync import sync_to_async
from django.test import Client

from queueapp import model
from queueapp.store import QueueStore

PASSWORD = "correct horse battery"


async def login(base_url: str, username: str) -> httpx.AsyncClient:
    """An HTTP client logged in through the real login form (CSRF and all)."""
    client = httpx.AsyncClient(base_url=base_url, follow_redirects=False)
    page = await client.get("/accounts/login/")
    token = csrf_from(page.text)
    response = await client.post("/accounts/login/", data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/"})
    assert response.status_code == 302, response.text[:500]
    return client


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@sync_to_async
def session_cookie(user) -> str:
    """A session cookie for ``user``, for WebSocket tests."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def submit(store: QueueStore, text: str, context_id: str | None = None):
    record, _ = await store.create_task(model.message("user", [{"text": text}], message_id=model.new_id()), context_id=context_id)
    return record
