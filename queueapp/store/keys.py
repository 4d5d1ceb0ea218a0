"""Every Redis key name, built from the configured prefix.

With the default prefix ``a2a`` the names are the documented ``a2a:queue``,
``a2a:active:{id}`` and so on. A prefix in braces, such as ``{a2a}``, makes it a
Cluster hash tag, so every key of one queue lands in one slot and every script
stays single-slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from queueapp.states import FINISHED


@dataclass(frozen=True)
class Keys:
    prefix: str = "a2a"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # The documented data model.
    @property
    def queue(self) -> str:
        """List of waiting task ids: LPUSH to enqueue, taken from the right (FIFO)."""
        return self._k("queue")

    def active(self, task_id: str) -> str:
        """Hash of an unfinished task."""
        return self._k("active", task_id)

    def deadletter(self, task_id: str) -> str:
        """Hash of a finished task, kept as history until retention removes it."""
        return self._k("deadletter", task_id)

    def legacy_context(self, context_id: str) -> str:
        """Set of a context's task ids, as earlier versions kept it beside ``index_context``
        (the same members). Nothing reads it; deleting a context's last task removes it."""
        return self._k("context", context_id)

    @property
    def notify(self) -> str:
        """Pub/sub channel carrying a small JSON notice on every change."""
        return self._k("queue", "notify")

    # Structures added by this implementation.
    @property
    def processing(self) -> str:
        """List of ids taken off the queue by a blocking wait and not yet leased."""
        return self._k("processing")

    @property
    def processing_seen(self) -> str:
        """Hash id -> first time the reaper saw an id in ``processing`` without a lease."""
        return self._k("processing", "seen")

    @property
    def leases(self) -> str:
        """Sorted set of claimed task ids, scored by lease deadline (ms)."""
        return self._k("leases")

    @property
    def cancels(self) -> str:
        """Set of running task ids whose cancellation was asked for."""
        return self._k("cancels")

    @property
    def index_active(self) -> str:
        """Sorted set of unfinished task ids, scored by last status time (whole ms, ``index_score`` in ``_common.lua``)."""
        return self._k("idx", "active")

    def index_history_state(self, state: str) -> str:
        """Sorted set of finished task ids in one terminal state, scored by finish time (whole ms, ``index_score`` in ``_common.lua``)."""
        return self._k("idx", "history", state)

    @property
    def index_history_states(self) -> list[str]:
        """Together, every finished task: lists of all tasks merge these with ``index_active``."""
        return [self.index_history_state(state.value) for state in FINISHED]

    def index_context(self, context_id: str) -> str:
        """Sorted set of a context's task ids, scored by last status time (whole ms, ``index_score`` in ``_common.lua``)."""
        return self._k("idx", "context", context_id)

    @property
    def contexts(self) -> str:
        """Sorted set of context ids, scored by last activity (whole ms, ``index_score`` in ``_common.lua``)."""
        return self._k("contexts")

    @property
    def context_owners(self) -> str:
        """Hash context id -> the identity that owns it, for contexts created with auth on."""
        return self._k("contexts", "owners")

    # An owner's own copies of the active and per-state history indexes: with auth on, every
    # task with an owner is in one of these too, so one identity's list reads only its tasks.
    # The identity is percent-encoded, so that one with a ':' cannot spell another's key.
    def index_owner_active(self, owner: str | None) -> str:
        """Sorted set of an owner's unfinished task ids, scored like ``index_active``."""
        return self._k("idx", "owner", quote(owner or "", safe=""), "active")

    def index_owner_history_state(self, owner: str | None, state: str) -> str:
        """Sorted set of an owner's finished task ids in one terminal state."""
        return self._k("idx", "owner", quote(owner or "", safe=""), "history", state)

    def index_owner_history_states(self, owner: str | None) -> list[str]:
        return [self.index_owner_history_state(owner, state.value) for state in FINISHED]

    @property
    def counts(self) -> str:
        """Hash state -> number of tasks in that state now, plus running totals."""
        return self._k("counts")

    def events(self, task_id: str) -> str:
        """List of a task's events, in order: what SSE, resubscribe and waits read (see read_events.lua)."""
        return self._k("events", task_id)

    def message_id(self, context_id: str, message_id: str, owner: str | None = None) -> str:
        """String message id -> task id, so a retried send does not make a second task.

        Per owner: one identity's message id never finds another's task.
        """
        if owner:
            return self._k("msgid", "owner", quote(owner, safe=""), context_id, message_id)
        return self._k("msgid", context_id, message_id)

    def push_configs(self, task_id: str) -> str:
        """Hash config id -> push notification config JSON."""
        return self._k("push", task_id)

    @property
    def workers(self) -> str:
        """Sorted set of worker ids, scored by last heartbeat (ms)."""
        return self._k("workers")

    def worker(self, worker_id: str) -> str:
        """Hash describing one worker: host, pid, start time, current task ids."""
        return self._k("worker", worker_id)

    def stats_minute(self, minute: int) -> str:
        """Hash of per-minute counters (one per finished state, wait and run time sums and buckets)."""
        return self._k("stats", str(minute))

    @property
    def paused(self) -> str:
        """Present while the queue is paused: workers stop claiming."""
        return self._k("paused")

    def lock(self, name: str) -> str:
        """Held by the process that last did ``name`` (``retention``: for the cleanup interval)."""
        return self._k(name, "lock")
