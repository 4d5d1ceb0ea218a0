"""Helpers the process and fault tests share: waiting for a condition, submitting tasks, reading states."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from queueapp import model, runtime
from queueapp.agents import load_agent
from queueapp.keys import Keys
from queueapp.store import QueueStore
from queueapp.worker import Worker
from tests.support import ROOT


async def eventually(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.05, message: str = "condition") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


def user_message(text: str, message_id: str | None = None) -> dict:
    return model.message("user", [model.text_part(text)], message_id=message_id)


async def submit(store: QueueStore, count: int, text: str, *, context_id: str | None = None) -> list[str]:
    """Create ``count`` tasks with the same text; returns their ids in submission order."""
    ids = []
    for _ in range(count):
        record, _ = await store.create_task(user_message(text), context_id=context_id)
        ids.append(record.id)
    return ids


def sync_client(store: QueueStore) -> redis.Redis:
    """A blocking client on the same Redis as an asyncio store (for the audit)."""
    kwargs = store.redis.connection_pool.connection_kwargs
    if "path" in kwargs:
        return redis.Redis(unix_socket_path=kwargs["path"], decode_responses=True)
    return redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), decode_responses=True)


def states(client: redis.Redis, ids: list[str], prefix: str = "a2a") -> dict[str, str]:
    """id -> stored state ('missing' when neither active nor in the history), in one round trip."""
    keys = Keys(prefix)
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(keys.deadletter(task_id), "state")
        pipe.hget(keys.active(task_id), "state")
    rows = pipe.execute()
    return {task_id: rows[2 * i] or rows[2 * i + 1] or "missing" for i, task_id in enumerate(ids)}


def count_finished(client: redis.Redis, ids: list[str], prefix: str = "a2a") -> int:
    keys = Keys(prefix)
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.exists(keys.deadletter(task_id))
    return sum(pipe.execute())


def attempts(client: redis.Redis, ids: list[str], prefix: str = "a2a") -> dict[str, int]:
    """id -> how many times a worker claimed the task (from its history record)."""
    keys = Keys(prefix)
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(keys.deadletter(task_id), "attempts")
    return {task_id: int(value or 0) for task_id, value in zip(ids, pipe.execute(), strict=True)}


def manage(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a management command to its end and capture what it printed."""
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@contextlib.asynccontextmanager
async def running_worker(store: QueueStore, config, agent: str = "demo"):
    """A Worker running in this event loop for the duration of the block, then stopped gracefully."""
    runtime.set_store(store)
    worker = Worker(store, load_agent(agent, config), config)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        runtime.set_store(None)


def report(scenario: str, **figures: Any) -> None:
    """Print one scenario's figures (``pytest -s`` shows them; docs/reliability.md quotes them)."""
    print(f"\nFAULT-REPORT {scenario}: " + ", ".join(f"{name}={value}" for name, value in figures.items()), flush=True)


A2A_HEADERS = {"A2A-Version": "1.0", "Content-Type": "application/json"}


def send_message_body(text: str, message_id: str, *, context_id: str | None = None, blocking: bool = True, request_id: int | str = 1) -> dict:
    """A 1.0 JSON-RPC SendMessage request."""
    message: dict[str, Any] = {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}]}
    if context_id:
        message["contextId"] = context_id
    params: dict[str, Any] = {"message": message}
    if not blocking:
        params["configuration"] = {"returnImmediately": True}
    return {"jsonrpc": "2.0", "id": request_id, "method": "SendMessage", "params": params}
