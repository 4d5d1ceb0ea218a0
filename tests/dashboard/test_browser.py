"""The dashboard in real Chromium (Debian's package) against a live ``serve`` process.

Tasks are submitted through the A2A endpoint (JSON-RPC ``SendMessage``, A2A 1.0), as a
client would. Screenshots go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from queueapp import model
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN_PASSWORD = "browser-test-password"
SCREENSHOTS = ROOT / "test-output" / "screenshots"


def ensure_chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root."""
    if not Path(CHROMIUM).exists() and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True)
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium"
    return CHROMIUM


@pytest.fixture
def page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def start(processes, redis_url: str, **env: str):
    return processes.serve(redis_url, A2A_AGENT="demo", A2A_DASHBOARD_ADMIN_PASSWORD=ADMIN_PASSWORD, **env)


def send(base: str, text: str, *, context_id: str | None = None, task_id: str | None = None, wait: bool = False) -> dict:
    """SendMessage over JSON-RPC, A2A 1.0; returns the task."""
    message = model.message("user", [{"text": text}], task_id=task_id, context_id=context_id)
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message, "configuration": {"returnImmediately": not wait}}}
    response = httpx.post(f"{base}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=30)
    response.raise_for_status()
    result = response.json()["result"]
    return result["task"]


def log_in(page: Page, base: str, next_path: str = "/") -> None:
    page.goto(f"{base}{next_path}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}{next_path}")


def live_on(page: Page) -> None:
    expect(page.locator("#live-state")).to_have_text("Live updates: on")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_log_in_and_see_the_overview(processes, redis_url, page):
    server = start(processes, redis_url)
    page.goto(f"{server.url}/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".error-text")).to_contain_text("did not match")
    log_in(page, server.url)
    expect(page.get_by_role("heading", name="Live workers (1)")).to_be_visible()
    live_on(page)
    send(server.url, "hello", wait=True)
    expect(page.locator('dd[data-state="completed"]')).to_have_text("1")
    shot(page, "overview")


def test_queue_length_rises_and_falls_without_a_reload(processes, redis_url, page):
    server = start(processes, redis_url, A2A_EMBEDDED_WORKERS="0")
    log_in(page, server.url)
    live_on(page)
    page.evaluate("window.__samePage = true")
    length = page.get_by_test_id("queue-length")
    expect(length).to_have_text("0")
    for i in range(5):
        send(server.url, f"task {i}")
    expect(length).to_have_text("5")
    expect(page.get_by_test_id("no-worker-warning")).to_be_visible()
    worker = processes.worker(redis_url, A2A_AGENT="demo")
    # Starting a Python process takes seconds on a busy machine; the page has 5 s once it runs.
    wait_until(lambda: "Worker started" in worker.output, timeout=60, message="the worker to start")
    expect(length).to_have_text("0")
    expect(page.locator('dd[data-state="completed"]')).to_have_text("5")
    expect(page.get_by_test_id("no-worker-warning")).to_have_count(0)
    assert page.evaluate("window.__samePage") is True


def test_cancel_a_running_sleep_task_from_its_page(processes, redis_url, page):
    server = start(processes, redis_url)
    task = send(server.url, "sleep 60")
    log_in(page, server.url, f"/dashboard/tasks/{task['id']}/")
    live_on(page)
    expect(page.get_by_test_id("task-state")).to_have_text("working")
    page.get_by_role("button", name="Cancel task").click()
    expect(page.get_by_test_id("task-state")).to_have_text("canceled")
    expect(page.locator(".messages")).to_contain_text("Cancel requested")
    state = httpx.post(f"{server.url}/a2a", json={"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": task["id"]}}, headers={"A2A-Version": "1.0"}).json()
    assert state["result"]["status"]["state"] == "TASK_STATE_CANCELED"


def test_retry_a_failed_task_while_the_queue_is_paused(processes, redis_url, page):
    server = start(processes, redis_url)
    task = send(server.url, "fail on purpose", wait=True)
    assert task["status"]["state"] == "TASK_STATE_FAILED"
    log_in(page, server.url, f"/dashboard/tasks/{task['id']}/")
    live_on(page)
    page.get_by_role("button", name="Pause the queue").click()
    expect(page.get_by_text("The queue is paused")).to_be_visible()
    page.get_by_role("button", name="Retry task").click()
    expect(page.get_by_test_id("task-state")).to_have_text("submitted")
    expect(page.get_by_test_id("queue-length")).to_have_text("1")
    page.get_by_role("button", name="Resume the queue").click()
    expect(page.get_by_test_id("task-state")).to_have_text("failed")
    expect(page.get_by_test_id("queue-length")).to_have_text("0")
    expect(page.locator("ol.timeline .state-failed")).to_have_count(2)


def test_open_a_context_and_see_its_conversation(processes, redis_url, page):
    server = start(processes, redis_url)
    asked = send(server.url, "ask What colour is the sky?", wait=True)
    context_id = asked["contextId"]
    send(server.url, "Blue", context_id=context_id, task_id=asked["id"], wait=True)
    send(server.url, "Thank you", context_id=context_id, wait=True)
    log_in(page, server.url, "/dashboard/contexts/")
    page.get_by_role("link", name=context_id).click()
    expect(page.get_by_role("heading", name=f"Context {context_id}")).to_be_visible()
    turns = page.locator("ol.conversation article.msg")
    expect(turns).to_have_count(6)
    expect(turns.nth(0)).to_contain_text("ask What colour is the sky?")
    expect(turns.nth(1)).to_contain_text("What colour is the sky?")
    expect(turns.nth(2)).to_contain_text("Blue")
    expect(turns.nth(3)).to_contain_text("Thanks, got your answer: Blue")
    expect(turns.nth(4)).to_contain_text("Thank you")
    expect(page.locator("ol.conversation .state-change .state-completed")).to_have_count(2)
    shot(page, "context")


HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def test_a_script_in_a_message_is_shown_as_text_and_never_runs(processes, redis_url, page):
    server = start(processes, redis_url)
    log_in(page, server.url, "/dashboard/history/")
    live_on(page)
    task = send(server.url, HOSTILE, wait=True)
    row = page.locator("table.tasks tbody tr").first  # arrived live, without a reload
    expect(row).to_contain_text("<script>window.__pwned = 1</script>")
    shot(page, "history")
    for path in (f"/dashboard/tasks/{task['id']}/", f"/dashboard/contexts/{task['contextId']}/", "/dashboard/history/?q=pwned"):
        page.goto(f"{server.url}{path}")
        expect(page.get_by_text(HOSTILE, exact=False).first).to_be_visible()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src=x]").count() == 0


def test_polling_takes_over_when_websocket_is_blocked(processes, redis_url, page):
    server = start(processes, redis_url, A2A_EMBEDDED_WORKERS="0")
    page.route_web_socket("**/ws/dashboard/**", lambda ws: ws.close(code=1011))
    log_in(page, server.url)
    expect(page.locator("#live-state")).to_contain_text("polling", timeout=30_000)
    send(server.url, "while polling")
    expect(page.get_by_test_id("queue-length")).to_have_text("1")


SET_VISIBILITY = """state => {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_a_hidden_tab_stops_receiving_until_visible(processes, redis_url, page):
    server = start(processes, redis_url, A2A_EMBEDDED_WORKERS="0")
    log_in(page, server.url)
    live_on(page)
    length = page.get_by_test_id("queue-length")
    page.evaluate(SET_VISIBILITY, "hidden")
    page.wait_for_timeout(300)
    for i in range(3):
        send(server.url, f"unseen {i}")
    page.wait_for_timeout(1500)
    expect(length).to_have_text("0")  # nothing was delivered while hidden
    page.evaluate(SET_VISIBILITY, "visible")
    expect(length).to_have_text("3")
