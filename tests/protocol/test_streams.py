"""SSE streams: across processes, keep-alive, identical concurrent streams, client disconnects."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from queueapp.model import new_id
from tests.protocol.conftest import Live, start_live
from tests.support import ManagedProcess, base_env, wait_until


@pytest.fixture(scope="module")
def split() -> Iterator[tuple[Live, ManagedProcess]]:
    """``serve`` without workers, and a separate ``runworker`` process doing the work."""
    with tempfile.TemporaryDirectory(prefix="a2a-streams-") as folder:
        server = start_live(Path(folder), A2A_EMBEDDED_WORKERS="0")
        env = base_env(server.redis.url, str(Path(folder) / "data"), A2A_AGENT="demo")
        worker = ManagedProcess(["runworker"], env, Path(folder) / "worker.log").start()
        yield server, worker
        worker.stop()
        server.serve.stop()
        server.redis.stop()


async def read_stream(url: str, body: dict, version: str = "1.0") -> tuple[list[dict], int]:
    """(JSON frames, keep-alive comments) of one SSE response."""
    frames, comments = [], 0
    async with httpx.AsyncClient(timeout=60) as client, client.stream("POST", url, json=body, headers={"A2A-Version": version}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(orjson.loads(line[6:]))
            elif line.startswith(":"):
                comments += 1
    return frames, comments


def stream_body(text: str) -> dict:
    message = {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage", "params": {"message": message}}


async def test_stream_on_serve_sees_work_done_by_a_separate_worker(split):
    live, worker = split
    frames, comments = await read_stream(f"{live.url}/a2a", stream_body("sleep 2"))
    results = [f["result"] for f in frames]
    assert results[0]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert comments >= 1  # A2A_SSE_KEEPALIVE=1s and the worker reports once a second
    task_id = results[0]["task"]["id"]
    assert f"task_id={task_id}" in worker.output  # the worker process ran it, not serve


async def test_concurrent_subscribers_see_identical_sequences(split):
    live, _ = split
    message = {"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": "sleep 2"}]}
    task = live.rpc("SendMessage", {"message": message, "configuration": {"returnImmediately": True}}).json()["result"]["task"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": task["id"]}}
    (first, _), (second, _) = await asyncio.gather(read_stream(f"{live.url}/a2a", body), read_stream(f"{live.url}/a2a", body))
    events = [[f["result"] for f in frames[1:]] for frames in (first, second)]
    assert events[0] == events[1]
    assert events[0][-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_v03_stream_has_kinds_and_final_flag_on_input_required(split):
    live, _ = split
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "message/stream",
        "params": {"message": {"kind": "message", "messageId": new_id(), "role": "user", "parts": [{"kind": "text", "text": "ask Why?"}]}},
    }
    frames, _ = await read_stream(f"{live.url}/a2a", body, version="0.3")
    results = [f["result"] for f in frames]
    assert all(f["id"] == 7 for f in frames)
    assert results[0]["kind"] == "task"
    assert results[-1]["kind"] == "status-update" and results[-1]["status"]["state"] == "input-required" and results[-1]["final"] is True


def test_client_disconnect_leaves_nothing_running(split):
    live, _ = split
    with httpx.stream("POST", f"{live.url}/a2a", json=stream_body("sleep 3"), headers={"A2A-Version": "1.0"}, timeout=30) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    task_id = orjson.loads(first[6:])["result"]["task"]["id"]
    # The task itself goes on (it is queued work, not tied to the connection) and finishes.
    wait_until(lambda: live.rpc("GetTask", {"id": task_id}).json()["result"]["status"]["state"] == "TASK_STATE_COMPLETED", timeout=20)
    assert "Traceback" not in live.serve.output


def test_a_redis_outage_during_a_stream_ends_it_with_storage_unavailable(tmp_path):
    """An outage is not a bug: the stream ends with STORAGE_UNAVAILABLE and the log has one warning."""
    live = start_live(tmp_path, A2A_EMBEDDED_WORKERS="0", A2A_QUEUE_OPTIONS_TIMEOUT="1s")
    try:
        with httpx.stream("POST", f"{live.url}/a2a", json=stream_body("sleep 30"), headers={"A2A-Version": "1.0"}, timeout=30) as response:
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data: "))  # the task, submitted
            live.redis.process.send_signal(signal.SIGSTOP)
            frames = [line for line in lines if line.startswith(("event: ", "data: "))]
        assert frames[0] == "event: error"
        error = orjson.loads(frames[1][6:])["error"]
        assert error["code"] == -32603 and error["data"][0]["reason"] == "STORAGE_UNAVAILABLE"
        assert "Redis unavailable during an event stream" in live.serve.output
        assert "Traceback" not in live.serve.output and "ERROR" not in live.serve.output
    finally:
        live.redis.process.send_signal(signal.SIGCONT)
        live.serve.stop()
        live.redis.stop()
