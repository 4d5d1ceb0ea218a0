"""The machine handlers: no browser housekeeping, no thread per request, Django's answers kept."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import get_script_prefix, include, path

from a2a_site import accounts
from a2a_site.handlers import MachineASGIHandler, MachineHandler
from queueapp.protocol.urls import is_machine_path

stream_closed = asyncio.Event()
view_cancelled = asyncio.Event()


async def echo(request, word: str = ""):
    return HttpResponse(f"{request.method} {word} {request.read().decode()} {request.headers.get('X-Test', '')}", content_type="text/plain")


async def endless(request):
    async def frames():
        try:
            yield b"first"
            await asyncio.sleep(3600)
            yield b"never"
        finally:
            stream_closed.set()

    return StreamingHttpResponse(frames(), content_type="text/event-stream")


async def slow(request):
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        view_cancelled.set()
        raise


async def missing(request):
    raise Http404("no such thing")


async def broken(request):
    raise RuntimeError("boom")


async def prefix(request):
    return HttpResponse(get_script_prefix())


def sync_view(request):
    return HttpResponse("sync")


urlpatterns = [
    path("echo/<str:word>", echo),
    path("endless", endless),
    path("slow", slow),
    path("missing", missing),
    path("broken", broken),
    path("prefix", prefix),
    path("sync", sync_view),
    # The styled 404 and 500 pages link into the dashboard (and its login), so their names must resolve.
    path("", include("dashboard.urls")),
    path("accounts/", include(accounts.urlpatterns())),
]


class Recording(MachineASGIHandler):
    """Django's machine handler, noting the paths it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send):
        self.paths.append(scope["path"])
        await super().__call__(scope, receive, send)


def scope(path: str, method: str = "POST", headers: list | None = None, root_path: str = "") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


class Client:
    """Plays the ASGI server: feeds the body in chunks, then waits for ``leave`` to disconnect."""

    def __init__(self, *chunks: bytes):
        self.incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks or (b"",))]
        self.leave = asyncio.Event()
        self.sent: list[dict] = []
        self.first_body = asyncio.Event()

    async def receive(self) -> dict:
        if self.incoming:
            return self.incoming.pop(0)
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.first_body.set()

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


async def ended(served: asyncio.Task) -> None:
    """Wait for the handler to return by itself (no cancelling it here), and normally."""
    await asyncio.wait({served}, timeout=5)
    if not served.done():
        served.cancel()
        pytest.fail("the handler went on after the client left")
    served.result()


@pytest.fixture
def lean(settings) -> tuple[MachineHandler, Recording]:
    settings.ROOT_URLCONF = __name__  # both handlers route with the views above
    django = Recording()
    return MachineHandler(django), django


def receivers_for(signal, sender) -> list:
    return [receiver for receiver in signal._live_receivers(sender)[0]]


def test_database_housekeeping_runs_for_browser_requests_only():
    MachineASGIHandler()
    MachineASGIHandler()  # a second instance changes nothing more
    for signal in (signals.request_started, signals.request_finished):
        assert close_old_connections in receivers_for(signal, ASGIHandler)
        assert close_old_connections not in receivers_for(signal, MachineASGIHandler)
        assert receivers_for(signal, ASGIHandler).count(close_old_connections) == 1


def test_machine_paths_are_the_protocol_health_and_metrics():
    for path_ in ("/a2a", "/.well-known/agent-card.json", "/message:send", "/tasks", "/tasks/1:cancel", "/v1/tasks", "/health", "/metrics"):
        assert is_machine_path(path_), path_
    for path_ in ("/", "/dashboard/", "/accounts/login/", "/admin/", "/static/dashboard/live.js"):
        assert not is_machine_path(path_), path_


async def test_an_async_view_is_served_in_the_loop_without_starting_a_thread(lean, monkeypatch):
    handler, django = lean
    started, start = [], threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread), start(thread)))
    client = Client(b'{"a":', b" 1}")
    tasks = asyncio.all_tasks()
    await handler(scope("/echo/hi", headers=[(b"x-test", b"yes")]), client.receive, client.send)
    assert (client.status, client.body) == (200, b'POST hi {"a": 1} yes')
    assert django.paths == [] and started == []
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks  # the disconnect watcher is gone with the request


async def test_views_see_the_script_prefix_of_the_mount_point(lean):
    handler, _ = lean
    client = Client()
    await handler(scope("/prefix", method="GET", root_path="/queue"), client.receive, client.send)
    assert client.body == b"/queue/"


async def test_sync_views_and_unknown_paths_go_to_django(lean):
    handler, django = lean
    for path_, status, body in (("/sync", 200, b"sync"), ("/nowhere", 404, None)):
        client = Client()
        await handler(scope(path_, method="GET"), client.receive, client.send)
        assert client.status == status
        assert body is None or client.body == body
    assert django.paths == ["/sync", "/nowhere"]


async def test_exceptions_get_djangos_answers(lean):
    handler, django = lean
    for path_, status in (("/missing", 404), ("/broken", 500)):
        client = Client()
        await handler(scope(path_), client.receive, client.send)
        assert client.status == status
    assert django.paths == []


async def test_a_disconnect_ends_a_stream_and_closes_its_source(lean):
    handler, _ = lean
    stream_closed.clear()
    client = Client()
    served = asyncio.create_task(handler(scope("/endless", method="GET"), client.receive, client.send))
    await asyncio.wait_for(client.first_body.wait(), 5)
    client.leave.set()
    await ended(served)
    await asyncio.wait_for(stream_closed.wait(), 5)
    assert client.body == b"first"


async def test_a_disconnect_cancels_a_waiting_view(lean):
    handler, _ = lean
    view_cancelled.clear()
    client = Client()
    served = asyncio.create_task(handler(scope("/slow"), client.receive, client.send))
    await asyncio.sleep(0.05)
    client.leave.set()
    await ended(served)
    assert view_cancelled.is_set() and client.sent == []
    assert served.cancelling() == 0


async def test_the_servers_own_cancellation_still_propagates(lean):
    handler, _ = lean
    client = Client()
    served = asyncio.create_task(handler(scope("/slow"), client.receive, client.send))
    await asyncio.sleep(0.05)
    served.cancel()
    with pytest.raises(asyncio.CancelledError):
        await served


async def test_a_client_gone_before_its_body_arrived_gets_nothing(lean):
    handler, django = lean
    client = Client()
    client.incoming = [{"type": "http.disconnect"}]
    await handler(scope("/echo/x"), client.receive, client.send)
    assert client.sent == [] and django.paths == []
