"""The embedded Redis under real processes: supervised while in use, stopped by its last user."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import redis

from queueapp.embedded import _server_pid as server_pid
from queueapp.embedded import _stop_if_unused as stop_if_unused
from queueapp.embedded import embedded_dir, embedded_socket, ensure_embedded_server, stop_embedded_server
from tests.support import wait_until


def send(url: str, n: int) -> str | None:
    """One SendMessage; the task id when the server acknowledged it, else None."""
    body = {
        "jsonrpc": "2.0", "id": n, "method": "SendMessage",
        "params": {"message": {"messageId": f"m-{n}", "role": "ROLE_USER", "parts": [{"text": f"task {n}"}]}, "configuration": {"returnImmediately": True}},
    }  # fmt: skip
    try:
        answer = httpx.post(f"{url}/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None
    return answer.get("result", {}).get("task", {}).get("id")


def pingable(cfg) -> bool:
    client = redis.Redis(unix_socket_path=str(embedded_socket(cfg)), socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()  # an open connection would count as another user of the server


def redis_pid(cfg) -> int:
    return int((embedded_dir(cfg) / "redis.pid").read_text())


def test_a_killed_embedded_redis_comes_back_on_its_data_and_nothing_acknowledged_is_lost(processes, make_config):
    cfg = make_config(A2A_DATA_DIR=processes.data_dir)
    try:
        server = processes.serve(None, A2A_EMBEDDED_WORKERS="0")
        first_pid = redis_pid(cfg)
        acknowledged: list[str] = []
        stop = threading.Event()

        def submit_all_along() -> None:
            n = 0
            deadline = time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < deadline and n < 2000:
                n += 1
                task_id = send(server.url, n)
                if task_id:
                    acknowledged.append(task_id)

        sender = threading.Thread(target=submit_all_along)
        sender.start()
        wait_until(lambda: len(acknowledged) >= 20, message="tasks before the kill")
        os.kill(first_pid, signal.SIGKILL)
        wait_until(lambda: "Embedded Redis restarted on the same data" in server.output, timeout=20, message="the restart log line")
        wait_until(lambda: httpx.get(f"{server.url}/health").status_code == 200, timeout=20, message="/health to recover")
        before = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= before + 20, timeout=20, message="tasks after the restart")
        stop.set()
        sender.join(40)

        assert redis_pid(cfg) != first_pid
        assert "Embedded Redis is gone, restarting it on the same data (AOF)" in server.output
        client = redis.Redis(unix_socket_path=str(embedded_socket(cfg)), decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for task_id in acknowledged:
            pipe.exists(f"a2a:active:{task_id}")
        missing = [t for t, found in zip(acknowledged, pipe.execute(), strict=True) if not found]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged tasks lost"
        assert set(client.lrange("a2a:queue", 0, -1)) == set(acknowledged)
        client.close()
    finally:
        stop_embedded_server(cfg)


def test_serve_stops_the_embedded_redis_unless_another_process_still_uses_it(processes, make_config):
    cfg = make_config(A2A_DATA_DIR=processes.data_dir)
    try:
        server = processes.serve(None, A2A_EMBEDDED_WORKERS="0")
        worker = processes.worker(None)
        wait_until(lambda: "Worker started" in worker.output, message="the worker to start")
        assert server.stop() == 0
        assert "Embedded Redis left running" in server.output and "other connection(s) use it" in server.output
        assert pingable(cfg)  # the separate worker still has its queue

        assert worker.stop() == 0  # the last user
        assert "Embedded Redis stopped: no other process uses it" in worker.output
        wait_until(lambda: not pingable(cfg), message="the embedded Redis to stop")

        alone = processes.serve(None, A2A_EMBEDDED_WORKERS="1")
        assert alone.stop() == 0
        assert "Embedded Redis stopped: no other process uses it" in alone.output
        assert not pingable(cfg)
    finally:
        stop_embedded_server(cfg)


def test_stopping_sends_shutdown_once_and_spares_a_server_started_after_it(make_config, tmp_path):
    """A process stopping its embedded Redis while another starts one on the same data must
    not shut the newcomer down too: the SHUTDOWN is never retried on a fresh connection."""
    cfg = make_config(A2A_DATA_DIR=str(tmp_path / "data"))
    ensure_embedded_server(cfg)
    stop_watching = threading.Event()
    restarts: list[int] = []

    def restart_when_gone() -> None:  # what another process's supervisor does: no connection of its own
        while not stop_watching.is_set():
            if server_pid(cfg) is None:
                ensure_embedded_server(cfg)
                restarts.append(redis_pid(cfg))
            time.sleep(0.05)

    watcher = threading.Thread(target=restart_when_gone, daemon=True)
    watcher.start()
    try:
        stop_if_unused(cfg)
        wait_until(lambda: restarts and pingable(cfg), message="the other process's Redis")
        time.sleep(3)  # longer than redis-py's first retry backoffs
        assert len(restarts) == 1, f"the newcomer's Redis was shut down {len(restarts) - 1} more time(s)"
        assert pingable(cfg) and redis_pid(cfg) == restarts[0]
    finally:
        stop_watching.set()
        watcher.join(5)
        stop_embedded_server(cfg)


def test_a_one_shot_command_stops_the_embedded_redis_it_started_and_spares_one_in_use(processes, make_config):
    # Before, cleanup_tasks and backfill_owners started it and left it running with no user.
    cfg = make_config(A2A_DATA_DIR=processes.data_dir)
    try:
        for command in ("cleanup_tasks", "backfill_owners"):
            done = processes.command(None, command)
            assert done.wait(60) == 0, done.output
            assert not pingable(cfg), command
        worker = processes.worker(None)
        wait_until(lambda: "Worker started" in worker.output, message="the worker to start")
        assert processes.command(None, "cleanup_tasks").wait(60) == 0
        assert pingable(cfg)  # the worker still uses it
        assert worker.stop() == 0
    finally:
        stop_embedded_server(cfg)
