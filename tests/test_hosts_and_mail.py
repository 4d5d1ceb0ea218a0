"""The Host header cannot steer the server: allowed hosts by default, password reset only with mail.

Before: A2A_ALLOWED_HOSTS defaulted to ``*`` and the password-reset page was always there,
so ``Host: evil.example`` made the server mail a reset link pointing at evil.example.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from a2a_site.accounts import offers_password_reset
from queueapp import config
from tests.support import ServeProcess

# ---- which hosts, and when password reset is offered ------------------------------------------


@pytest.mark.parametrize(
    ("env", "hosts"),
    [
        ({}, ("localhost", "127.0.0.1", "[::1]")),
        ({"A2A_PUBLIC_URL": "https://agents.corp.invalid/a2a"}, ("localhost", "127.0.0.1", "[::1]", "agents.corp.invalid")),
        ({"A2A_SERVER_HOST": "10.1.2.3"}, ("localhost", "127.0.0.1", "[::1]", "10.1.2.3")),
        ({"A2A_SERVER_HOST": "0.0.0.0"}, ("localhost", "127.0.0.1", "[::1]")),
        ({"A2A_SERVER_HOST": "::1"}, ("localhost", "127.0.0.1", "[::1]")),
        ({"A2A_ALLOWED_HOSTS": "a2a.internal,server"}, ("a2a.internal", "server")),
        ({"A2A_ALLOWED_HOSTS": "*"}, ("*",)),
    ],
)
def test_default_allowed_hosts_are_the_local_names_and_the_public_host(env, hosts):
    assert config.load(env).allowed_hosts == hosts


@pytest.mark.parametrize(
    ("env", "offered"),
    [
        ({}, False),
        ({"A2A_EMAIL_URL": "smtp://mail.internal:25"}, True),
        ({"A2A_EMAIL_URL": "smtp://mail.internal:25", "A2A_ALLOWED_HOSTS": "*"}, False),
        ({"A2A_EMAIL_URL": "smtp://mail.internal:25", "A2A_ALLOWED_HOSTS": "*", "A2A_PUBLIC_URL": "https://a.invalid"}, True),
    ],
)
def test_password_reset_needs_mail_and_a_host_the_client_cannot_choose(env, offered):
    assert offers_password_reset(config.load(env)) is offered


@pytest.mark.parametrize("url", ["http://mail.internal", "smtp://", "file://"])
def test_an_email_url_of_another_kind_is_refused(url):
    with pytest.raises(config.ConfigError, match="A2A_EMAIL_URL"):
        config.load({"A2A_EMAIL_URL": url})


def test_the_mail_password_never_shows_in_the_config_repr():
    assert "s3cret" not in repr(config.load({"A2A_EMAIL_URL": "smtp://u:s3cret@mail.internal:25"}))


# ---- a live serve --------------------------------------------------------------------------


def test_by_default_another_host_is_refused_and_no_reset_is_offered(processes, redis_url):
    serve = processes.serve(redis_url)
    for path in ("/accounts/login/", "/.well-known/agent-card.json", "/accounts/password_reset/"):
        assert httpx.get(f"{serve.url}{path}", headers={"Host": "evil.example"}).status_code == 400
    for host in ("localhost", "127.0.0.1", "[::1]"):
        assert httpx.get(f"{serve.url}/accounts/login/", headers={"Host": f"{host}:{serve.port}"}).status_code == 200
    assert httpx.get(f"{serve.url}/accounts/password_reset/").status_code == 404
    assert "Forgot your password" not in httpx.get(f"{serve.url}/accounts/login/").text


def ask_for_reset(serve: ServeProcess, host: str | None = None) -> httpx.Response:
    with httpx.Client(base_url=serve.url, timeout=30) as client:
        page = client.get("/accounts/password_reset/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        headers = {"Host": host} if host else {}
        return client.post("/accounts/password_reset/", data={"email": "ops@corp.invalid", "csrfmiddlewaretoken": token}, headers=headers)


def mails(folder: Path) -> list[str]:
    return [path.read_text() for path in sorted(folder.glob("*"))] if folder.exists() else []


def add_user_with_mail(processes, redis_url: str) -> None:
    code = "from django.contrib.auth.models import User; User.objects.create_user('ops', 'ops@corp.invalid', 'pw-ops-123456')"
    assert processes.command(redis_url, "shell", "-c", code).wait(60) == 0


@pytest.mark.parametrize("public_url", ["https://dash.corp.invalid", ""])
def test_reset_links_point_at_the_public_url_or_an_allowed_host(processes, redis_url, tmp_path, public_url):
    outbox = tmp_path / "mail"
    serve = processes.serve(redis_url, A2A_EMAIL_URL=f"file://{outbox}", A2A_PUBLIC_URL=public_url, A2A_EMAIL_FROM="a2a@corp.invalid")
    add_user_with_mail(processes, redis_url)
    assert "Forgot your password" in httpx.get(f"{serve.url}/accounts/login/").text
    assert ask_for_reset(serve, host="evil.example").status_code == 400
    assert mails(outbox) == []
    assert ask_for_reset(serve).status_code == 302
    [mail] = mails(outbox)
    expected = f"{public_url or serve.url}/accounts/reset/"
    assert expected in mail and "evil.example" not in mail and "From: a2a@corp.invalid" in mail


def test_every_a2a_binding_refuses_another_host_and_the_probes_answer_any(processes, redis_url):
    # DNS rebinding: a page whose own name was made to resolve to this server sends its own
    # name as Host. Before, only the card and the dashboard refused it: such a page could list,
    # read and make tasks through /a2a and the HTTP+JSON routes of a server with auth off.
    serve = processes.serve(redis_url, A2A_AGENT="echo")
    evil = {"Host": f"evil.example:{serve.port}", "A2A-Version": "1.0"}
    message = {"message": {"messageId": "rebound-1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}}
    rpc = httpx.post(f"{serve.url}/a2a", json={"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": message}, headers=evil)
    assert rpc.status_code == 400 and rpc.json()["error"]["code"] == -32600 and rpc.json()["id"] is None
    rest = httpx.post(f"{serve.url}/message:send", json=message, headers=evil)
    assert rest.status_code == 400 and rest.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert httpx.get(f"{serve.url}/tasks", headers=evil).status_code == 400
    old = httpx.post(f"{serve.url}/v1/message:send", json=message, headers={"Host": "evil.example", "A2A-Version": "0.3"})
    assert old.status_code == 400 and "does not answer to the host 'evil.example'" in old.json()["message"]
    # Nothing was made: an allowed name lists no task.
    assert httpx.get(f"{serve.url}/tasks", headers={"A2A-Version": "1.0"}).json()["tasks"] == []
    for path in ("/health", "/metrics"):
        assert httpx.get(f"{serve.url}{path}", headers={"Host": "10.0.0.7:8080"}).status_code == 200
