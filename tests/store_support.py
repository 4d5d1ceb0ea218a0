"""Helpers of the store's tests: a store on Redis and on fakeredis, and tasks in a given state."""

from __future__ import annotations

import json
from typing import Any

from queueapp.model import Json
from queueapp.states import TaskState
from queueapp.store import QueueStore
from queueapp.worker.updater import ClaimUpdater
from tests.faults.tools import user_message


async def create(store: QueueStore, text: str = "hello", **kwargs):
    record, created = await store.create_task(user_message(text), **kwargs)
    assert created
    return record


async def claim_one(store: QueueStore, worker_id: str = "w1", lease: float = 30):
    ids, _ = await store.take(1)
    claims = await store.lease(ids, worker_id, lease)
    assert len(claims) == 1
    return claims[0]


async def finish_as(store: QueueStore, state: TaskState, text: str = "done", **create_kwargs: Any):
    record = await create(store, **create_kwargs)
    claim = await claim_one(store)
    updater = ClaimUpdater(store, claim)
    await updater.working("on it")
    ending = {
        TaskState.COMPLETED: updater.complete,
        TaskState.FAILED: updater.fail,
        TaskState.CANCELED: updater.cancel,
        TaskState.REJECTED: updater.reject,
    }[state]
    await ending(text)
    return record


async def notices_heard(pubsub: Any, count: int) -> list[Json]:
    """The first ``count`` notices a subscription to the notify channel hears (within about 20 s)."""
    notices: list[Json] = []
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message:
            data = json.loads(message["data"])
            notices.extend(data if isinstance(data, list) else [data])  # a batch's notices come as one array
        if len(notices) >= count:
            break
    return notices
