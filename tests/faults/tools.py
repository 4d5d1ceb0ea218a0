"""Helpers the process and fault tests share: waiting for a condition, submitting tasks, reading states."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import redis

from queueapp import model, services
from queueapp.agents import load_agent
from queueapp.store import QueueStore
from queueapp.store.keys import Keys
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
    services.install(services.Services(config, store))  # for agents that use the store themselves
    worker = Worker(store, load_agent(agent, config), config)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        services.install(None)


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


class SubmitFlow:
    """Clients that keep submitting; each answer is an acknowledged id, an error, or (never) a hang."""

    def __init__(self, url: str | list[str], limit: int | None = None, text: str = "hello"):
        self.urls = [url] if isinstance(url, str) else url
        self.limit = limit  # stop after this many requests (None: until ``running`` is cleared)
        self.text = text
        self.issued = 0
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.hangs = 0
        self.running = True
        self.last_ack = 0.0

    async def client(self, number: int) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while self.running and (self.limit is None or self.issued < self.limit):
                self.issued += 1
                body = send_message_body(self.text, str(uuid.uuid4()), blocking=False)
                try:
                    response = await http.post(f"{self.urls[number % len(self.urls)]}/a2a", json=body, headers=A2A_HEADERS)
                except httpx.TimeoutException:
                    self.hangs += 1
                    continue
                except httpx.TransportError as exc:
                    self.errors.append(f"transport: {exc}")
                    continue
                answer = response.json()
                if response.status_code == 200 and "result" in answer:
                    self.acknowledged.append(answer["result"]["task"]["id"])
                    self.last_ack = time.monotonic()
                else:
                    error = answer.get("error", {})
                    assert error.get("message"), f"an error without a reason: {response.status_code} {answer}"
                    self.errors.append(f"{response.status_code} {error.get('code')} {error.get('message')}")
                await asyncio.sleep(0.01)

    def start(self, clients: int) -> list[asyncio.Task]:
        return [asyncio.create_task(self.client(n)) for n in range(clients)]
