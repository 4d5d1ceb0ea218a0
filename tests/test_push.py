"""Push notifications: url checks, and delivery to a real webhook receiver on loopback."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from queueapp import model
from queueapp.agents import load_agent
from queueapp.push import PushDelivery, check_url, notification_headers
from queueapp.services import Services
from queueapp.states import TaskState
from queueapp.worker.hooks import default_hooks
from tests.support import free_port, wait_until
from tests.test_agents_conformance import running_worker, until, wait_for_state


class Receiver:
    """A webhook on loopback that records every POST and answers with scripted statuses."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answered first, one per request; then 200
        self.redirect_to: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if receiver.redirect_to and self.path == "/hook":
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                else:
                    self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self) -> list[dict]:
        return [r["body"] for r in self.received if r["path"] == "/hook"]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
async def delivery(store):
    made: list[PushDelivery] = []

    def make(**options) -> PushDelivery:
        options = {"allow_private": True, "max_attempts": 3, "backoff": 0.05, "timeout": 2.0, **options}
        made.append(PushDelivery(store, **options))
        return made[-1]

    yield make
    for item in made:
        await item.aclose()


async def new_task(store, text: str = "hello"):
    """A task whose next event the hook will be given directly.

    The worker's writes tell the hook whether a task has push configs; these tests store
    the configs themselves, so they mark the record as a write would have.
    """
    record, _ = await store.create_task(model.message("user", [model.text_part(text)]))
    record.has_push_configs = True
    return record


def push_config(task_id: str, url: str, **extra) -> dict:
    return {"id": "cfg-1", "taskId": task_id, "url": url, **extra}


def kinds(events: list[dict]) -> list[str]:
    return [next(iter(event)) for event in events]


# ---- check_url --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "example.com/hook"])
def test_check_url_refuses_other_schemes(url):
    with pytest.raises(ValueError, match="must use http or https"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["", "   ", "http://", "http://:80/x", "http://host:99999/x"])
def test_check_url_refuses_missing_host_or_bad_port(url):
    with pytest.raises(ValueError, match="push notification url"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_check_url_refuses_non_public_hosts(url):
    with pytest.raises(ValueError, match="A2A_PUSH_ALLOW_PRIVATE"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible loopback
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
        "64:ff9b::7f00:1",
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:c0a8:1::1",  # 6to4 of 192.168.0.1
        "::ffff:0:a9fe:a9fe",  # SIIT-translated
        "fec0::1",  # site-local
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo whose client is 10.0.0.1
    ],
)
def test_check_url_refuses_ipv6_forms_of_private_addresses(address):
    with pytest.raises(ValueError, match="A2A_PUSH_ALLOW_PRIVATE"):
        check_url(f"http://[{address}]:8080/hook", allow_private=False)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"])
def test_check_url_accepts_ipv6_forms_of_public_addresses(address):
    check_url(f"http://[{address}]/hook", allow_private=False)


def test_check_url_allows_private_hosts_when_configured():
    check_url("http://127.0.0.1:9000/hook", allow_private=True)
    check_url("https://localhost/hook", allow_private=True)


def test_check_url_accepts_a_public_address():
    check_url("https://8.8.8.8/hook", allow_private=False)
    check_url("http://[2001:4860:4860::8888]:8443/hook", allow_private=False)


def test_check_url_refuses_a_host_that_does_not_resolve():
    with pytest.raises(ValueError, match="cannot be resolved"):
        check_url("https://no-such-host.invalid/hook", allow_private=False)


def test_notification_headers_carry_token_and_authentication():
    headers = notification_headers({"url": "x", "token": "tok", "authentication": {"scheme": "Bearer", "credentials": "secret"}})
    assert headers["X-A2A-Notification-Token"] == "tok"
    assert headers["Authorization"] == "Bearer secret"
    # A config stored in 0.3 form lists its schemes.
    assert notification_headers({"url": "x", "authentication": {"schemes": ["Basic"], "credentials": "dTpw"}})["Authorization"] == "Basic dTpw"
    assert set(notification_headers({"url": "x"})) == {"Content-Type"}


# ---- delivery through a real worker -----------------------------------------------------


async def test_worker_posts_every_event_in_order_with_the_token(store, config, receiver, delivery):
    push = delivery()
    record = await new_task(store, "push me")
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url, token="secret-token"))
    async with running_worker(store, config, load_agent("echo"), hooks=[push]):
        await wait_for_state(store, record.id, TaskState.COMPLETED)
    await push.drain()

    events = receiver.events()
    assert kinds(events) == ["statusUpdate", "artifactUpdate", "statusUpdate"]
    assert [e["statusUpdate"]["status"]["state"] for e in events if "statusUpdate" in e] == ["TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]
    assert events[1]["artifactUpdate"]["artifact"]["parts"][0]["text"].endswith("Original input: push me")
    assert all(e[kinds([e])[0]]["taskId"] == record.id for e in events)
    assert {r["headers"]["X-A2A-Notification-Token"] for r in receiver.received} == {"secret-token"}
    assert all(r["headers"]["Content-Type"] == "application/json" for r in receiver.received)


async def test_a_task_without_push_configs_is_skipped_without_a_lookup(store, receiver, delivery):
    push = delivery()
    record, _ = await store.create_task(model.message("user", [model.text_part("hi")]))
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url))
    record.has_push_configs = False  # as the write before the config existed reported
    await push(record, model.status_event(record.task))
    assert push.pending == 0
    await push.drain()
    assert receiver.received == []


async def test_authentication_header_is_sent(store, receiver, delivery):
    push = delivery()
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url, authentication={"scheme": "Bearer", "credentials": "abc123"}))
    await push(record, model.status_event(record.task))
    await push.drain()
    assert receiver.received[0]["headers"]["Authorization"] == "Bearer abc123"
    assert "X-A2A-Notification-Token" not in receiver.received[0]["headers"]


async def test_each_config_of_the_task_gets_the_event(store, delivery):
    push = delivery()
    record = await new_task(store)
    with Receiver() as first, Receiver() as second:
        await store.set_push_config(record.id, "a", push_config(record.id, first.url, id="a"))
        await store.set_push_config(record.id, "b", push_config(record.id, second.url, id="b"))
        await push(record, model.status_event(record.task))
        await push.drain()
        assert len(first.events()) == 1 and len(second.events()) == 1


async def test_retry_delivers_after_the_receiver_was_down(store, delivery):
    push = delivery(max_attempts=20, backoff=0.05)
    port = free_port()
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, f"http://127.0.0.1:{port}/hook"))
    await push(record, model.status_event(record.task))
    await until(lambda: push.stats["failed_attempts"] >= 1)
    with Receiver(port) as late:
        await push.drain()
        assert kinds(late.events()) == ["statusUpdate"]
    assert push.stats["delivered"] == 1 and push.stats["given_up"] == 0


async def test_server_errors_are_retried_and_order_is_kept(store, receiver, delivery):
    push = delivery(max_attempts=5)
    receiver.statuses = [503, 500]
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url))
    for index in range(3):
        artifact = {"artifactId": "a", "parts": [{"text": str(index)}]}
        await push(record, model.artifact_event(record.task, artifact, append=index > 0, last_chunk=index == 2))
    await push.drain()
    texts = [e["artifactUpdate"]["artifact"]["parts"][0]["text"] for e in receiver.events()]
    assert texts == ["0", "0", "0", "1", "2"]  # the first event twice refused, then the rest in order
    assert push.stats["delivered"] == 3


async def test_gives_up_after_max_attempts(store, receiver, delivery):
    push = delivery(max_attempts=3)
    receiver.statuses = [503] * 10
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url))
    await push(record, model.status_event(record.task))
    await push.drain()
    assert len(receiver.received) == 3
    assert push.stats["given_up"] == 1 and push.pending == 0


async def test_client_errors_are_not_retried(store, receiver, delivery):
    push = delivery(max_attempts=5)
    receiver.statuses = [401]
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url))
    await push(record, model.status_event(record.task))
    await push.drain()
    assert len(receiver.received) == 1 and push.stats["refused"] == 1


async def test_redirects_are_not_followed(store, receiver, delivery):
    push = delivery()
    receiver.redirect_to = f"http://127.0.0.1:{receiver.port}/internal"
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url))
    await push(record, model.status_event(record.task))
    await push.drain()
    assert [r["path"] for r in receiver.received] == ["/hook"]
    assert push.stats["refused"] == 1


async def test_private_targets_are_refused_unless_allowed(store, config, receiver, delivery):
    push = delivery(allow_private=False)
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, receiver.url))
    async with running_worker(store, config, load_agent("echo"), hooks=[push]):
        done = await wait_for_state(store, record.id, TaskState.COMPLETED)
    await push.drain()
    assert done.state is TaskState.COMPLETED
    assert receiver.received == []
    assert push.stats["refused"] == 3 and push.stats["delivered"] == 0


async def test_a_dead_webhook_never_holds_up_the_task(store, config, delivery):
    push = delivery(max_attempts=20, backoff=0.2)
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, f"http://127.0.0.1:{free_port()}/hook"))
    async with running_worker(store, config, load_agent("echo"), hooks=[push]):
        done = await wait_for_state(store, record.id, TaskState.COMPLETED)
    assert done.state is TaskState.COMPLETED
    assert push.pending > 0  # still retrying in the background


async def test_events_beyond_the_bound_are_dropped(store, delivery):
    push = delivery(max_pending=2, max_attempts=20, backoff=0.5)
    record = await new_task(store)
    await store.set_push_config(record.id, "cfg-1", push_config(record.id, f"http://127.0.0.1:{free_port()}/hook"))
    for _ in range(4):
        await push(record, model.status_event(record.task))
    assert push.pending == 2 and push.stats["dropped"] == 2


async def test_tasks_without_configs_post_nothing(store, receiver, delivery):
    push = delivery()
    record = await new_task(store)
    await push(record, model.status_event(record.task))
    await push.drain()
    assert receiver.received == [] and push.stats["delivered"] == 0 and push.pending == 0


async def test_default_hooks_share_one_delivery_per_process(store, config):
    shared = Services(config, store)
    hooks = default_hooks(shared)
    assert hooks == [shared.push]
    assert default_hooks(shared)[0] is hooks[0]
    assert hooks[0].allow_private is False and hooks[0].max_attempts == config.push_max_attempts
    await hooks[0].aclose()


def test_no_hooks_when_push_notifications_are_off(store, config):
    assert default_hooks(Services(config.replace(capabilities_push_notifications=False), store)) == []


# ---- through the live endpoint ------------------------------------------------------------


def send_message(server_url: str, text: str, push: dict) -> dict:
    request = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "SendMessage",
        "params": {
            "message": model.message("user", [model.text_part(text)]),
            "configuration": {"returnImmediately": True, "taskPushNotificationConfig": push},
        },
    }
    return httpx.post(f"{server_url}/a2a", json=request, headers={"A2A-Version": "1.0"}, timeout=10).json()


def test_a_live_server_delivers_to_the_webhook_given_with_the_message(processes, redis_url, receiver):
    server = processes.serve(redis_url, A2A_AGENT="demo", A2A_PUSH_ALLOW_PRIVATE="true")
    answer = send_message(server.url, "chunks 3", {"url": receiver.url, "token": "live-token"})
    task_id = answer["result"]["task"]["id"]

    def finished() -> bool:
        return any(e.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_COMPLETED" for e in receiver.events())

    wait_until(finished, timeout=30, message="the completed event at the webhook")
    events = receiver.events()
    chunks = [e["artifactUpdate"]["artifact"]["parts"][0]["text"] for e in events if "artifactUpdate" in e]
    assert chunks == ["chunk-1 ", "chunk-2 ", "chunk-3 "]
    assert kinds(events)[-1] == "statusUpdate"
    assert all(e[kinds([e])[0]]["taskId"] == task_id for e in events)
    assert {r["headers"]["X-A2A-Notification-Token"] for r in receiver.received} == {"live-token"}


def test_a_live_server_refuses_a_private_webhook_by_default(processes, redis_url, receiver):
    server = processes.serve(redis_url)
    answer = send_message(server.url, "hello", {"url": receiver.url})
    assert answer["error"]["code"] == -32602
    assert "A2A_PUSH_ALLOW_PRIVATE" in answer["error"]["message"]
    assert receiver.received == []


def test_a_stopped_worker_gives_pending_notifications_what_is_left_of_the_grace(processes, redis_url):
    # The grace counts from the signal: running tasks and the push deliveries they leave share
    # it. Before, the deliveries got a whole grace of their own after the tasks had used theirs.
    silent = socket.socket()  # a webhook that accepts and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        server = processes.serve(redis_url, A2A_EMBEDDED_WORKERS="0", A2A_PUSH_ALLOW_PRIVATE="true")
        worker = processes.worker(redis_url, A2A_AGENT="demo", A2A_PUSH_ALLOW_PRIVATE="true", A2A_WORKER_SHUTDOWN_GRACE="4s", A2A_PUSH_TIMEOUT="30s")
        answer = send_message(server.url, "sleep 2", {"url": f"http://127.0.0.1:{silent.getsockname()[1]}/hook"})
        task_id = answer["result"]["task"]["id"]
        wait_until(lambda: f"task_id={task_id}" in worker.output, timeout=30, message="the worker to take the task")
        worker.signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert worker.wait(20) == 0
        elapsed = time.monotonic() - stopped
        assert 3.5 < elapsed < 5.5, elapsed  # the whole grace (the deliveries hang), not the task's 2 s plus another 4
        assert f"Task completed successfully, task_id={task_id}" in worker.output
        assert "Shutdown left push notifications undelivered" in worker.output
    finally:
        silent.close()
