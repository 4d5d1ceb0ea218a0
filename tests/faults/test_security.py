"""Security of the dashboard and of push webhooks, against the real app and real sockets.

What this module adds to the suites that already exist:

- tests/dashboard/test_actions.py checks one action each for anonymous, non-staff, missing
  or forged CSRF and GET; here every action URL (single, bulk, pause, purge) is tried each
  of those ways, plus a valid token sent from another origin, and then done by staff to
  show that the refused attempts could have changed something.
- tests/dashboard/test_pages.py and test_browser.py check escaping of <script>/<img> in
  task text; here an attribute-breaking payload goes through every view, including the
  active view, the live WebSocket frames, a context id holding "/" and quotes, and search
  and page parameters reflected into attributes.
- tests/dashboard/test_live.py refuses anonymous and evil.example WebSockets through the
  Channels communicator; here the same runs over uvicorn with look-alike origins and
  sessions that ended.
- tests/test_push.py covers literal private addresses, a 302 and a refused connection;
  here every redirect status, host names that resolve to private addresses, and webhooks
  that never answer or answer one byte at a time.
"""

from __future__ import annotations

import asyncio
import html
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import websockets

from queueapp import model
from queueapp.agents import load_agent
from queueapp.push import PushDelivery, check_url
from queueapp.states import TaskState
from tests.dashboard.conftest import channel_layer, dash_services, dash_store, server, users  # noqa: F401 - fixtures used here
from tests.dashboard.support import csrf_from, login, session_cookie, submit
from tests.test_agents_conformance import running_worker, wait_for_state
from tests.test_push import push_config

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


# ---- dashboard actions ------------------------------------------------------------------------


async def failed(store, text: str = "fail"):
    record = await submit(store, text)
    return await store.finish_unclaimed(await store.require(record.id), TaskState.FAILED, "boom")


async def _changed_state(store, task_id: str, wanted: TaskState) -> bool:
    return (await store.require(task_id)).state is wanted


async def _deleted(store, task_id: str) -> bool:
    return await store.get(task_id) is None


# action -> (url, form data, task to set up: "waiting" or "failed", did it happen?)
ACTIONS = {
    "cancel": ("/dashboard/actions/cancel/{id}/", {}, "waiting", lambda s, i: _changed_state(s, i, TaskState.CANCELED)),
    "retry": ("/dashboard/actions/retry/{id}/", {}, "failed", lambda s, i: _changed_state(s, i, TaskState.SUBMITTED)),
    "delete": ("/dashboard/actions/delete/{id}/", {"confirm": "yes"}, "failed", _deleted),
    "bulk-cancel": ("/dashboard/actions/bulk/cancel/", {"ids": "{id}"}, "waiting", lambda s, i: _changed_state(s, i, TaskState.CANCELED)),
    "bulk-retry": ("/dashboard/actions/bulk/retry/", {"ids": "{id}"}, "failed", lambda s, i: _changed_state(s, i, TaskState.SUBMITTED)),
    "bulk-delete": ("/dashboard/actions/bulk/delete/", {"ids": "{id}", "confirm": "yes"}, "failed", _deleted),
    "pause": ("/dashboard/actions/pause/", {"paused": "1"}, "waiting", lambda s, i: s.is_paused()),
    "purge": ("/dashboard/actions/purge/", {"state": "failed"}, "failed", _deleted),
}


async def token_of(client: httpx.AsyncClient) -> str:
    return csrf_from((await client.get("/accounts/login/")).text)


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_every_action_needs_staff_a_csrf_token_same_origin_and_post(server, users, dash_store, action):  # noqa: F811
    url_template, data_template, setup, happened = ACTIONS[action]
    record = await (submit(dash_store, "wait") if setup == "waiting" else failed(dash_store))
    url = url_template.format(id=record.id)
    data = {key: value.format(id=record.id) for key, value in data_template.items()}
    await users("viewer")
    await users("boss", staff=True)
    anonymous = httpx.AsyncClient(base_url=server)
    viewer, boss, other_boss = await login(server, "viewer"), await login(server, "boss"), await login(server, "boss")
    try:
        attempts = {
            "anonymous": await anonymous.post(url, data={**data, "csrfmiddlewaretoken": await token_of(anonymous)}),
            "not staff": await viewer.post(url, data={**data, "csrfmiddlewaretoken": await token_of(viewer)}),
            "no token": await boss.post(url, data=data),
            "another session's token": await boss.post(url, data={**data, "csrfmiddlewaretoken": await token_of(other_boss)}, headers={"Cookie": ""}),
            "another origin": await boss.post(url, data={**data, "csrfmiddlewaretoken": await token_of(boss)}, headers={"Origin": "http://evil.example"}),
            "GET": await boss.get(url, params=data),
        }
        expected = {"anonymous": 302, "not staff": 403, "no token": 403, "another session's token": 403, "another origin": 403, "GET": 405}
        assert {how: r.status_code for how, r in attempts.items()} == expected
        assert attempts["anonymous"].headers["location"].startswith("/accounts/login/")
        assert not await happened(dash_store, record.id), f"{action} happened without staff, token, origin or POST"
        if data.get("confirm"):
            unconfirmed = {key: value for key, value in data.items() if key != "confirm"}
            asked = await boss.post(url, data={**unconfirmed, "csrfmiddlewaretoken": await token_of(boss)})
            assert asked.status_code == 200 and not await happened(dash_store, record.id), f"{action} happened before it was confirmed"
        done = await boss.post(url, data={**data, "csrfmiddlewaretoken": await token_of(boss)})
        assert done.status_code == 302 and await happened(dash_store, record.id)
    finally:
        for client in (anonymous, viewer, boss, other_boss):
            await client.aclose()


# ---- escaping ---------------------------------------------------------------------------------

ATTR = "\"'><svg onload=alert(1)>"
CONTEXT = "ctx/\"'><svg onload=alert(2)>?#"  # a client chooses its context ids
RAW_MARKERS = ("<svg onload", "<svg/onload")


def assert_escaped(text: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in text, f"unescaped markup in {where}"


def assert_safe(response: httpx.Response, where: str) -> None:
    """HTML is escaped; a plain-text answer may echo input, as browsers will not sniff it into HTML."""
    if response.headers["content-type"].startswith("text/plain"):
        assert response.headers["x-content-type-options"] == "nosniff", where
        return
    assert_escaped(response.text, where)


async def hostile_tasks(store):
    """A waiting, a working and a failed task, all carrying the payload everywhere they can."""
    waiting, _ = await store.create_task(model.message("user", [{"text": ATTR}], message_id="w"), context_id=CONTEXT, identity=ATTR, metadata={"k": ATTR})
    failing, _ = await store.create_task(model.message("user", [{"text": ATTR}, {"url": "javascript:alert(3)", "filename": ATTR}], message_id="f"), context_id=CONTEXT, identity=ATTR)
    await store.finish_unclaimed(await store.require(failing.id), TaskState.FAILED, ATTR)
    working, _ = await store.create_task(model.message("user", [{"data": {ATTR: ATTR}}], message_id="k"), context_id=CONTEXT, identity=ATTR)
    ids, _ = await store.take(5)
    claim = next(c for c in await store.lease(ids, "w-1", 60) if c.record.id == working.id)
    claim.record.task["status"] = model.status(TaskState.WORKING, model.now_ms(), model.agent_text(ATTR))
    await store.update(claim.record, model.status_event(claim.record.task), token=claim.token)
    return waiting, working, failing


async def test_attribute_breaking_content_is_escaped_in_every_view_and_frame(server, users, dash_store):  # noqa: F811
    waiting, working, failing = await hostile_tasks(dash_store)
    await users("boss", staff=True)
    client = await login(server, "boss")
    paths = [
        "/", "/dashboard/queue/", "/dashboard/active/", "/dashboard/history/", "/dashboard/contexts/",
        f"/dashboard/tasks/{waiting.id}/", f"/dashboard/tasks/{working.id}/", f"/dashboard/tasks/{failing.id}/",
        f"/dashboard/history/?q={ATTR}", f"/dashboard/queue/?offset={ATTR}", f"/dashboard/live/?page={ATTR}",
        f"/dashboard/live/?page=active&x={ATTR}", f"/dashboard/history/purge/?state={ATTR}",
    ]
    try:
        for path in paths:
            response = await client.get(path)
            assert response.status_code < 500, (path, response.status_code)
            assert_safe(response, path)
        assert working.id in (await client.get("/dashboard/active/")).text  # shown, with its payload escaped
        assert 'href="javascript:' not in (await client.get(f"/dashboard/tasks/{failing.id}/")).text
        listing = (await client.get("/dashboard/contexts/")).text
        links = [html.unescape(href) for href in re.findall(r'href="(/dashboard/contexts/[^"]+)"', listing)]
        assert links, "the contexts page links to no context"
        context_page = await client.get(links[0])  # what a user clicking the context gets
        assert context_page.status_code == 200 and waiting.id in context_page.text, links[0]
        assert_escaped(context_page.text, links[0])
        cookie = client.cookies["sessionid"]
    finally:
        await client.aclose()
    for page in ("overview", "queue", "active", "history", f"task&id={working.id}", "contexts"):
        url = server.replace("http://", "ws://") + f"/ws/dashboard/?page={page}"
        async with websockets.connect(url, origin=server, additional_headers={"Cookie": f"sessionid={cookie}"}) as ws:
            assert_escaped(await asyncio.wait_for(ws.recv(), 10), f"the {page} frame")


# ---- the WebSocket over a real server -------------------------------------------------------


async def refused(url: str, origin: str | None, cookie: str | None) -> bool:
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    try:
        async with websockets.connect(url, origin=origin, additional_headers=headers) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    except (websockets.InvalidStatus, websockets.ConnectionClosed):
        return True
    return False


async def test_websocket_refuses_look_alike_origins_and_ended_sessions(server, users, dash_store):  # noqa: F811
    url = server.replace("http://", "ws://") + "/ws/dashboard/?page=overview"
    host = server.removeprefix("http://")
    cookie = await session_cookie(await users("boss", staff=True))
    assert not await refused(url, server, cookie)  # the real page's origin is let in
    for origin in (f"http://{host}.evil.example", f"http://evil.example/{host}", f"http://{host.split(':')[0]}:1", "null", f"http://user@{host}.evil.example"):
        assert await refused(url, origin, cookie), origin
    assert await refused(url, server, None)
    assert await refused(url, server, "not-a-session")
    client = await login(server, "boss")
    ended = client.cookies["sessionid"]
    await client.post("/accounts/logout/", data={"csrfmiddlewaretoken": csrf_from((await client.get("/dashboard/")).text)})
    await client.aclose()
    assert await refused(url, server, ended)


# ---- push webhooks ----------------------------------------------------------------------------


@pytest.fixture
async def delivery(store):
    made: list[PushDelivery] = []

    def make(**options) -> PushDelivery:
        made.append(PushDelivery(store, **{"allow_private": False, "max_attempts": 2, "backoff": 0.05, "timeout": 0.5, **options}))
        return made[-1]

    yield make
    for item in made:
        await item.aclose()


async def pushed_once(store, push: PushDelivery, url: str) -> None:
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")]))
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, url))
    record.has_push_configs = True  # what the worker's next write reports
    await push(record, model.status_event(record.task))
    await asyncio.wait_for(push.drain(), 30)


class Webhook:
    """A webhook on loopback that records each request's path and answers ``status`` with ``location``."""

    def __init__(self, status: int = 200, location: str = ""):
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.paths.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location.format(port=hook.port))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:{port}/internal", "http://[::1]:{port}/internal"])
async def test_no_redirect_is_followed_to_a_private_address(store, delivery, status, target):
    hook = Webhook(status, target)
    try:
        push = delivery(allow_private=True)  # the webhook itself is on loopback
        await pushed_once(store, push, f"http://127.0.0.1:{hook.port}/hook")
    finally:
        hook.close()
    assert hook.paths == ["/hook"]
    assert push.stats["refused"] == 1 and push.stats["delivered"] == 0


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> None:
    """Make chosen host names resolve to chosen addresses (the test has no DNS of its own)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in answers[host]]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["10.1.2.3"], ["93.184.216.34", "192.168.1.1"], ["fd00::1"], ["::ffff:10.0.0.1"]])
def test_a_host_name_that_resolves_to_any_private_address_is_refused(monkeypatch, addresses):
    fake_dns(monkeypatch, {"hooks.example.test": addresses})
    with pytest.raises(ValueError, match="A2A_PUSH_ALLOW_PRIVATE"):
        check_url("https://hooks.example.test/hook", allow_private=False)
    check_url("https://hooks.example.test/hook", allow_private=True)


async def test_a_name_that_turns_private_after_the_config_was_accepted_gets_nothing(store, monkeypatch, delivery):
    hook = Webhook()
    fake_dns(monkeypatch, {"hooks.example.test": ["93.184.216.34"]})
    url = f"http://hooks.example.test:{hook.port}/hook"
    check_url(url, allow_private=False)  # accepted while the name was public
    fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
    push = delivery()
    try:
        await pushed_once(store, push, url)
    finally:
        hook.close()
    assert hook.paths == [] and push.stats["refused"] == 1


class StallingWebhook:
    """A webhook on loopback that takes the request and then never finishes its answer.

    ``trickle``: it sends a status line and then one header byte at a time, forever, so
    that no single read ever waits long.
    """

    def __init__(self, trickle: bool):
        self.trickle = trickle
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by close()
            self.connections += 1
            threading.Thread(target=self._stall, args=(conn,), daemon=True).start()

    def _stall(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            if self.trickle:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.stopped.wait(0.1):
                if self.trickle:
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        return

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture(params=["silent", "trickle"])
def stalling(request) -> Iterator[StallingWebhook]:
    hook = StallingWebhook(trickle=request.param == "trickle")
    yield hook
    hook.close()


async def test_a_webhook_that_never_answers_costs_one_timeout_per_attempt(store, delivery, stalling):
    push = delivery(allow_private=True, timeout=0.5, max_attempts=3)
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")]))
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, stalling.url))
    record.has_push_configs = True  # what the worker's next write reports
    await push(record, model.status_event(record.task))
    await asyncio.wait_for(push.drain(), 30)  # would wait forever if an attempt were unbounded
    assert push.stats["given_up"] == 1 and push.stats["failed_attempts"] == 3 and stalling.connections == 3


async def test_a_stalling_webhook_never_holds_the_worker(store, config, delivery, stalling):
    push = delivery(allow_private=True, timeout=0.5, max_attempts=50)
    records = [(await store.create_task(model.message("user", [model.text_part(f"t{i}")])))[0] for i in range(3)]
    for record in records:
        await store.set_push_config(record.id, "cfg-1", push_config(record.id, stalling.url))
    async with running_worker(store, config, load_agent("echo"), hooks=[push]):
        for record in records:
            assert (await wait_for_state(store, record.id, TaskState.COMPLETED)).state is TaskState.COMPLETED
    assert push.pending > 0 and stalling.connections >= 1  # deliveries still going on in the background
