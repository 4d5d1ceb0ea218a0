"""``serve`` on each ASGI server: the endpoint, the embedded worker and the dashboard's WebSocket."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import grpc
import httpx
import orjson
import pytest

from queueapp.model import new_id
from tests.faults.tools import eventually, states, submit, sync_client
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


def test_a_serve_without_embedded_workers_says_it_has_none_to_drain(processes, redis_url):
    serve = processes.serve(redis_url, A2A_EMBEDDED_WORKERS="0")
    serve.signal(signal.SIGINT)
    assert serve.wait(30) == 0
    assert "Shutting down: no new requests" in serve.output
    assert "draining" not in serve.output and "Worker st" not in serve.output


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


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_a_port_in_use_stops_serve_before_the_banner_and_any_worker(processes, redis_url, redis_server, server):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        redis_server.client().lpush("a2a:queue", "left-alone")  # a worker that started would take it
        serve = processes.command(redis_url, "serve", "--server", server, A2A_SERVER_PORT=str(port))
        code = serve.wait(60)
    lines = serve.output.strip().splitlines()
    assert code != 0
    assert lines == [f"CommandError: cannot listen on 127.0.0.1:{port} (HTTP port {port}): address already in use"]
    assert redis_server.client().lrange("a2a:queue", 0, -1) == ["left-alone"]


class Stream:
    """A SendStreamingMessage response read in the background, line by line, to its end."""

    def __init__(self, url: str, text: str):
        self.lines: list[str] = []
        message = {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}]}
        body = {"jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage", "params": {"message": message}}
        self.reading = asyncio.create_task(self._read(f"{url}/a2a", body))

    async def _read(self, url: str, body: dict) -> None:
        # A response cut before its end raises here (httpx.RemoteProtocolError): ended cleanly, it returns.
        async with httpx.AsyncClient(timeout=120) as http, http.stream("POST", url, json=body, headers={"A2A-Version": "1.0"}) as response:
            async for line in response.aiter_lines():
                self.lines.append(line)

    async def task_id(self) -> str:
        data = await eventually(lambda: [line for line in self.lines if line.startswith("data: ")], message="the stream's first event")
        return orjson.loads(data[0][6:])["result"]["task"]["id"]


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_a_stop_keeps_to_the_grace_with_a_stream_open_and_claims_nothing_more(processes, redis_url, store, server):
    grace = 3.0
    serve = processes.serve(redis_url, extra_args=["--server", server], A2A_AGENT="demo", A2A_WORKER_SHUTDOWN_GRACE=f"{grace:g}s", A2A_SSE_KEEPALIVE="1s")
    client = sync_client(store)
    stream = Stream(serve.url, "sleep 60")
    running = await stream.task_id()
    await eventually(lambda: states(client, [running])[running] == "working", message="the task to run")
    started = time.monotonic()
    serve.signal(signal.SIGTERM)
    await asyncio.sleep(1)
    with pytest.raises(httpx.ConnectError):  # no new connections
        httpx.get(f"{serve.url}/health", timeout=2)
    with grpc.insecure_channel(serve.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused:  # nor gRPC calls
        channel.unary_unary("/lf.a2a.v1.A2AService/GetTask")(b"", timeout=2)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    [later] = await submit(store, 1, "hello")  # sent through another server: this one's worker has stopped claiming
    await asyncio.wait_for(stream.reading, grace + 5)  # open through the grace, then ended cleanly
    ended_s = time.monotonic() - started
    code = await asyncio.to_thread(serve.wait, 30)
    stopped_s = time.monotonic() - started
    assert code == 0
    assert grace - 0.5 < ended_s < grace + 1.5, ended_s
    assert stopped_s < grace + 3, stopped_s
    assert [line for line in stream.lines if line][-1].startswith(": closing: the server is shutting down")
    assert states(client, [running, later]) == {running: "submitted", later: "submitted"}
    assert client.lrange("a2a:queue", 0, -1) == [later, running]  # the returned task at the front
    assert f"Task requeued, task_id={running}, reason=worker shutdown" in serve.output
    assert "Traceback" not in serve.output and "ERROR" not in serve.output, serve.output[-3000:]


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_a_blocking_send_open_when_the_grace_ends_gets_its_task_as_it_stands(processes, redis_url, store, server):
    grace = 2.0
    serve = processes.serve(redis_url, extra_args=["--server", server], A2A_AGENT="demo", A2A_WORKER_SHUTDOWN_GRACE=f"{grace:g}s", A2A_BLOCKING_TIMEOUT="60s")
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "sleep 60"}]}}}
    sending = asyncio.ensure_future(asyncio.to_thread(httpx.post, f"{serve.url}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=30))
    client = sync_client(store)
    running = await eventually(lambda: client.zrange(store.keys.index_active, 0, -1), message="the task to be created")
    await eventually(lambda: states(client, running)[running[0]] == "working", message="the task to run")
    started = time.monotonic()
    serve.signal(signal.SIGTERM)
    answer = await asyncio.wait_for(sending, grace + 5)
    answered_s = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    task = answer.json()["result"]["task"]
    assert task["id"] == running[0] and task["status"]["state"] in ("TASK_STATE_WORKING", "TASK_STATE_SUBMITTED")
    assert grace - 0.5 < answered_s < grace + 2, answered_s  # at the end of the grace, not at A2A_BLOCKING_TIMEOUT
    assert await asyncio.to_thread(serve.wait, 30) == 0
    assert states(client, running)[running[0]] == "submitted"  # back on the queue for another worker
    assert "Answered 1 waiting request(s)" in serve.output
    assert "Traceback" not in serve.output and "ERROR" not in serve.output, serve.output[-3000:]


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_a_second_stop_signal_returns_running_tasks_to_the_front_at_once(processes, redis_url, store, server):
    serve = processes.serve(redis_url, extra_args=["--server", server], A2A_AGENT="demo", A2A_WORKER_SHUTDOWN_GRACE="25s")
    stream = Stream(serve.url, "sleep 30")
    running = await stream.task_id()
    client = sync_client(store)
    await eventually(lambda: states(client, [running])[running] == "working", message="the task to run")
    serve.signal(signal.SIGINT)
    await eventually(lambda: "draining embedded workers" in serve.output, message="the first signal to be seen")
    started = time.monotonic()
    serve.signal(signal.SIGINT)
    await asyncio.wait_for(stream.reading, 10)  # ended cleanly, at once
    assert await asyncio.to_thread(serve.wait, 20) == 0
    assert time.monotonic() - started < 10  # not the 25 s grace
    assert states(client, [running])[running] == "submitted"
    assert client.lindex("a2a:queue", -1) == running  # the front: taken next
    assert f"Task requeued, task_id={running}, reason=worker shutdown" in serve.output
    assert "Traceback" not in serve.output and "ERROR" not in serve.output, serve.output[-3000:]


async def test_an_embedded_worker_that_a_bug_ends_is_logged_and_replaced(monkeypatch, caplog):
    # Before, its task ended with the error unseen (gathered only at shutdown): the server went
    # on taking tasks that nothing ran, and /health said healthy.
    from types import SimpleNamespace

    from queueapp.management.commands import serve as serve_command

    started: list[FakeWorker] = []

    class FakeWorker:
        def __init__(self, *args, **kwargs):
            self.id, self.stopping = f"w{len(started)}", asyncio.Event()
            started.append(self)

        async def run(self):
            if len(started) == 1:
                raise RuntimeError("a bug")
            await self.stopping.wait()

    monkeypatch.setattr(serve_command, "Worker", FakeWorker)
    monkeypatch.setattr(serve_command, "default_hooks", lambda shared: [])
    monkeypatch.setattr(serve_command, "WORKER_RESTART_S", 0.01)
    command = serve_command.Command()
    command.shared = SimpleNamespace(store=None, config=None)
    workers = [FakeWorker()]
    keeping = asyncio.create_task(command._keep_running(workers, 0, agent=None))
    await eventually(lambda: len(started) == 2, timeout=5, message="a second worker")
    assert workers == [started[1]] and not keeping.done()
    assert "Embedded worker ended by an unexpected error, worker_id=w0; another starts in 0.01s" in caplog.text and "RuntimeError: a bug" in caplog.text
    workers[0].stopping.set()  # the shutdown stops whichever worker is in the list
    await asyncio.wait_for(keeping, 5)
    assert len(started) == 2
