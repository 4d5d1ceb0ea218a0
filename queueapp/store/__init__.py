"""The queue service: the Redis data model and its atomic transitions.

The endpoint, the worker, the dashboard and the commands all go through
:class:`QueueStore`, and nothing outside this package touches the Redis client or the
key names. Python decides what a task becomes (its new JSON and state); each Lua script
makes the change in one atomic step, guarded by the claim token (worker writes) or by the
revision the caller read (everyone else). It knows nothing about HTTP or A2A wire versions.

The store is one class put together from one module per concern:

- ``reads``: tasks, events and contexts;         - ``lists``: pages from the time indexes;
- ``transitions``: create, update, finish, delete; - ``actions``: cancel, continue, retry;
- ``claims``: take, lease, heartbeat, recovery;   - ``stats``: counts and per-minute stats;
- ``retention``: what cleanup reads and forgets;  - ``push_configs``: push notification configs;
- ``base``: the connection, health, INFO, locks;  - ``scripts``: the Lua scripts and what they take.
"""

from __future__ import annotations

from queueapp.store.actions import Actions
from queueapp.store.claims import Claims
from queueapp.store.errors import (
    Conflict,
    ContextNotAvailable,
    InvalidTransition,
    NotReplicated,
    StoreError,
    TaskNotCancelable,
    TaskNotFound,
)
from queueapp.store.keys import Keys
from queueapp.store.lists import Lists, valid_cursor
from queueapp.store.push_configs import PushConfigs
from queueapp.store.results import Claim, Page, Stats
from queueapp.store.retention import Retention
from queueapp.store.stats import Statistics

__all__ = [
    "Claim",
    "Conflict",
    "ContextNotAvailable",
    "InvalidTransition",
    "Keys",
    "NotReplicated",
    "Page",
    "QueueStore",
    "Stats",
    "StoreError",
    "TaskNotCancelable",
    "TaskNotFound",
    "valid_cursor",
]


class QueueStore(Actions, Claims, Lists, Statistics, Retention, PushConfigs):
    """The one way in to the queue's data in Redis."""
