"""Several ``serve`` started at once on a fresh A2A_DATA_DIR all come up, sharing one set-up."""

from __future__ import annotations

import re

import httpx

from tests.support import wait_until

PASSWORD = "concurrent start pw"


def login(url: str) -> httpx.Cookies:
    with httpx.Client(base_url=url, timeout=10) as client:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/accounts/login/").text).group(1)
        answer = client.post("/accounts/login/", data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/"})
        assert answer.status_code == 302, answer.text[:300]
        return client.cookies


def test_three_serve_started_at_once_on_a_fresh_data_dir_all_come_up(processes, redis_url):
    env = {"A2A_DASHBOARD_ADMIN_PASSWORD": PASSWORD, "A2A_EMBEDDED_WORKERS": "0"}
    servers = [processes.serve(redis_url, wait=False, **env) for _ in range(3)]
    for serve in servers:
        serve.wait_healthy(timeout=90)
    assert all("Traceback" not in s.output and "already exists" not in s.output for s in servers)
    created = [s for s in servers if "Dashboard login created" in s.output]
    assert len(created) == 1, "the admin user is made once, by one of them"
    # One secret key for all: a session made by one server is valid on the others.
    cookies = login(servers[0].url)
    for serve in servers[1:]:
        page = httpx.get(f"{serve.url}/dashboard/queue/", cookies=cookies, timeout=10)
        assert page.status_code == 200 and "/accounts/login/" not in str(page.url)
    wait_until(lambda: all(httpx.get(f"{s.url}/health", timeout=5).status_code == 200 for s in servers), timeout=10)
