"""Every path under a machine prefix answers JSON in its binding's error form, never the dashboard's HTML."""

from __future__ import annotations

import httpx
import pytest

from queueapp.protocol.urls import MACHINE_PATH_PREFIXES

# (method, path) -> the binding whose error form the answer must take
CASES = [
    ("GET", "/tasks/a:b", "rest-1.0", 404),
    ("GET", "/tasks/a%2Fb", "rest-1.0", 404),
    ("POST", "/tasks/a:b:cancel", "rest-1.0", 404),
    ("GET", "/tasks/x/pushNotificationConfigs/a/b", "rest-1.0", 404),
    ("GET", "/v1/tasks/a:b", "rest-0.3", 404),
    ("GET", "/v1/nothing", "rest-0.3", 404),
    ("POST", "/a2a/x", "jsonrpc", 404),
    ("GET", "/a2a", "jsonrpc", 405),
    ("PUT", "/a2a/", "jsonrpc", 405),
    ("DELETE", "/tasks/abc", "rest-1.0", 405),
    ("PUT", "/message:send", "rest-1.0", 405),
    ("GET", "/message:nothing", "rest-1.0", 404),
    ("POST", "/.well-known/agent-card.json", "rest-1.0", 405),
    ("GET", "/.well-known/nothing", "rest-1.0", 404),
    ("GET", "/extendedAgentCardX", "rest-1.0", 404),
    ("POST", "/metrics", "rest-1.0", 405),
    ("GET", "/healthz", "rest-1.0", 404),
]


@pytest.mark.parametrize("method,path,binding,status", CASES, ids=[f"{m} {p}" for m, p, _, _ in CASES])
def test_the_answer_is_json_in_the_bindings_error_form(live, method, path, binding, status):
    response = httpx.request(method, f"{live.url}{path}", headers={"Content-Type": "application/json"}, content=b"{}" if method in ("POST", "PUT") else None)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    if binding == "jsonrpc":
        assert body["jsonrpc"] == "2.0" and body["id"] is None
        assert body["error"]["code"] == (-32601 if status == 404 else -32600)
        message = body["error"]["message"]
    else:
        error = body["error"]
        assert error["code"] == status and error["details"][0]["reason"] == ("METHOD_NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED")
        assert error["status"] == ("NOT_FOUND" if status == 404 else "UNIMPLEMENTED")
        message = error["message"]
        if binding == "rest-0.3":
            assert body["type"] and body["code"] == -32601
    assert method in message and (path.split("%")[0] in message or status == 405)
    if status == 405:
        assert response.headers["Allow"] and response.headers["Allow"].split(",")[0].strip() in message


def test_every_machine_prefix_is_covered():
    assert {prefix for prefix in MACHINE_PATH_PREFIXES if any(path.startswith(prefix) for _, path, _, _ in CASES)} == set(MACHINE_PATH_PREFIXES)


def test_browser_paths_still_get_the_dashboards_pages(live):
    response = httpx.get(f"{live.url}/dashboard/nowhere/")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
