"""``serve`` on each ASGI server: the endpoint, the embedded worker and the dashboard's WebSocket."""

from __future__ import annotations

import httpx
import pytest

from tests.support import wait_until


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_serve_runs_the_endpoint_and_an_embedded_worker(processes, redis_url, server):
    serve = processes.serve(redis_url, extra_args=["--server", server])
    body = {
        "jsonrpc": "2.0",
        "id": "req-1",
        "method": "SendMessage",
        "params": {"message": {"messageId": f"m-{server}", "role": "ROLE_USER", "parts": [{"text": "hello"}]}},
    }
    answer = httpx.post(f"{serve.url}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=30).json()
    task = answer["result"]["task"]
    assert answer["id"] == "req-1"
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["text"].endswith("Original input: hello")
    assert httpx.get(f"{serve.url}/health").json() == {"status": "healthy"}


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_sigterm_stops_serve_cleanly_with_exit_code_zero(processes, redis_url, server):
    serve = processes.serve(redis_url, extra_args=["--server", server])
    serve.signal(15)
    assert serve.wait(30) == 0
    wait_until(lambda: "Worker stopped" in serve.output, message="the embedded worker to stop")


def test_machine_paths_skip_the_browser_middleware(processes, redis_url):
    """The endpoint answers without session, CSRF or frame middleware; the dashboard keeps them."""
    serve = processes.serve(redis_url)
    card = httpx.get(f"{serve.url}/.well-known/agent-card.json")
    health = httpx.get(f"{serve.url}/health")
    login = httpx.get(f"{serve.url}/accounts/login/")
    assert card.status_code == health.status_code == login.status_code == 200
    assert "X-Frame-Options" not in card.headers and "X-Frame-Options" not in health.headers
    assert login.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in login.cookies


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_machine_paths_keep_djangos_answers(processes, redis_url, server):
    """Served straight from the event loop, the machine paths still answer as Django would."""
    serve = processes.serve(redis_url, extra_args=["--server", server], A2A_ALLOWED_HOSTS="127.0.0.1,localhost")
    card = f"{serve.url}/.well-known/agent-card.json"
    assert httpx.get(card).json()["supportedInterfaces"][0]["url"] == f"{serve.url}/a2a"
    assert httpx.post(card).status_code == 405
    assert httpx.get(card, headers={"Host": "elsewhere.example"}).status_code == 400  # ALLOWED_HOSTS still holds
    assert httpx.get(f"{serve.url}/tasks/t-1/no-such-route").status_code == 404
    missing = httpx.get(f"{serve.url}/tasks/t-1", headers={"A2A-Version": "1.0"})
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    rpc = httpx.get(f"{serve.url}/a2a", headers={"A2A-Version": "1.0"}).json()
    assert rpc["error"]["code"] == -32600
