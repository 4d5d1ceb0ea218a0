"""The audit every fault test ends with: where is each acknowledged task, and is Redis consistent?

Every acknowledged task must be in exactly one place (waiting in the queue, active, or in
the history), in its context's index and its other indexes; nothing may be left in the processing
list or the leases once its task is finished; no history record may be duplicated, and the
per-state counters must match what is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from queueapp.states import FINISHED
from queueapp.store.keys import Keys

TERMINAL_INDEX_STATES = [state.value for state in FINISHED]
TERMINAL = set(TERMINAL_INDEX_STATES)


@dataclass
class AuditReport:
    tasks: int
    by_place: Counter = field(default_factory=Counter)
    by_state: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"tasks={self.tasks} places={dict(self.by_place)} states={dict(self.by_state)}"


def _read(client: redis.Redis, keys: Keys, ids: list[str]) -> tuple[list[dict], list[dict], list[str], dict]:
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hgetall(keys.active(task_id))
        pipe.hgetall(keys.deadletter(task_id))
    rows = pipe.execute()
    queue = client.lrange(keys.queue, 0, -1)
    return rows[0::2], rows[1::2], queue, client.hgetall(keys.counts)


def _check_task(client: redis.Redis, keys: Keys, task_id: str, active: dict, finished: dict, queued: int, report: AuditReport) -> None:
    problems = report.problems
    if active and finished:
        problems.append(f"{task_id}: both active and in the history")
    if not active and not finished:
        problems.append(f"{task_id}: lost (neither active nor in the history)")
        return
    fields = finished or active
    state = fields.get("state", "?")
    report.by_state[state] += 1
    place = "history" if finished else ("queue" if queued else "active")
    report.by_place[place] += 1
    if queued > 1:
        problems.append(f"{task_id}: {queued} times in the queue")
    if queued and finished:
        problems.append(f"{task_id}: finished but still in the queue")
    if finished and state not in TERMINAL:
        problems.append(f"{task_id}: in the history with state {state}")
    if active and state in TERMINAL:
        problems.append(f"{task_id}: active with terminal state {state}")
    context_id = fields.get("context_id", "")
    pipe = client.pipeline(transaction=False)
    pipe.zscore(keys.index_context(context_id), task_id)
    pipe.zscore(keys.contexts, context_id)
    pipe.zscore(keys.index_active, task_id)
    for terminal in TERMINAL_INDEX_STATES:
        pipe.zscore(keys.index_history_state(terminal), task_id)
    pipe.zscore(keys.leases, task_id)
    in_ctx_index, ctx_listed, in_active, *in_states, leased = pipe.execute()
    in_history = [terminal for terminal, score in zip(TERMINAL_INDEX_STATES, in_states, strict=True) if score is not None]
    for ok, what in ((in_ctx_index is not None, "context index"), (ctx_listed is not None, "contexts index")):
        if not ok:
            problems.append(f"{task_id}: missing from the {what}")
    if finished and (in_active is not None or in_history != [state] or leased is not None):
        problems.append(f"{task_id}: finished but indexes disagree (active={in_active}, history={in_history}, lease={leased})")
    if active and (in_active is None or in_history):
        problems.append(f"{task_id}: active but indexes disagree (active={in_active}, history={in_history})")
    if fields.get("identity"):
        _check_owner(client, keys, task_id, fields["identity"], context_id, state if finished else "", problems)


def _check_owner(client: redis.Redis, keys: Keys, task_id: str, owner: str, context_id: str, finished_state: str, problems: list[str]) -> None:
    """A task with an owner is in exactly its owner's index of its place, and its context is the owner's."""
    pipe = client.pipeline(transaction=False)
    pipe.zscore(keys.index_owner_active(owner), task_id)
    for terminal in TERMINAL_INDEX_STATES:
        pipe.zscore(keys.index_owner_history_state(owner, terminal), task_id)
    pipe.hget(keys.context_owners, context_id)
    in_active, *in_states, context_owner = pipe.execute()
    places = (["active"] if in_active is not None else []) + [t for t, score in zip(TERMINAL_INDEX_STATES, in_states, strict=True) if score is not None]
    if places != [finished_state or "active"]:
        problems.append(f"{task_id}: owner {owner}'s indexes disagree ({places})")
    if context_owner != owner:
        problems.append(f"{task_id}: its context belongs to {context_owner!r}, not to its owner {owner!r}")


def _leaked_owner_entries(client: redis.Redis, keys: Keys) -> list[str]:
    """Owner index members and context owners whose task or context is gone."""
    leaked = []
    for index in client.scan_iter(match=f"{keys.prefix}:idx:owner:*", count=1000):
        for task_id in client.zrange(index, 0, -1):
            if not client.exists(keys.active(task_id), keys.deadletter(task_id)):
                leaked.append(f"{index} holds {task_id}")
    for context_id in client.hkeys(keys.context_owners):
        if not client.exists(keys.index_context(context_id)):
            leaked.append(f"{keys.context_owners} holds {context_id}")
    return leaked


def audit(client: redis.Redis, acknowledged: Iterable[str], *, prefix: str = "a2a", quiet: bool = True) -> AuditReport:
    """Check Redis against the ids the system acknowledged. ``quiet``: no worker holds anything now."""
    keys = Keys(prefix)
    ids = list(dict.fromkeys(acknowledged))
    actives, finisheds, queue, counts = _read(client, keys, ids)
    report = AuditReport(len(ids))
    queued = Counter(queue)
    for task_id, active, finished in zip(ids, actives, finisheds, strict=True):
        _check_task(client, keys, task_id, active, finished, queued[task_id], report)
    report.problems.extend(f"leaked: {entry}" for entry in _leaked_owner_entries(client, keys)[:10])
    duplicates = [task_id for task_id, n in queued.items() if n > 1]
    if duplicates:
        report.problems.append(f"ids queued more than once: {duplicates[:5]}")
    history_ids = [task_id for terminal in TERMINAL_INDEX_STATES for task_id in client.zrange(keys.index_history_state(terminal), 0, -1)]
    if len(history_ids) != len(set(history_ids)):
        report.problems.append("a task is in more than one per-state history index")
    stored = Counter(report.by_state)
    every_task = client.zcard(keys.index_active) + len(history_ids)
    for state, value in counts.items():
        if not state.startswith("total_") and int(value) != stored.get(state, 0) and len(ids) == every_task:
            report.problems.append(f"counter {state}={value} but {stored.get(state, 0)} tasks are {state}")
    if quiet:
        processing = client.lrange(keys.processing, 0, -1)
        leases = client.zrange(keys.leases, 0, -1)
        if processing:
            report.problems.append(f"{len(processing)} ids left in the processing list: {processing[:5]}")
        if leases:
            report.problems.append(f"{len(leases)} ids left in the leases: {leases[:5]}")
    return report


def every_task_id(client: redis.Redis, prefix: str = "a2a") -> list[str]:
    """Every task the indexes know of: the unfinished ones and each finished state's."""
    keys = Keys(prefix)
    return [task_id for index in (keys.index_active, *keys.index_history_states) for task_id in client.zrange(index, 0, -1)]


def assert_clean(client: redis.Redis, acknowledged: Iterable[str], **kwargs) -> AuditReport:
    report = audit(client, acknowledged, **kwargs)
    assert not report.problems, "audit failed:\n" + "\n".join(report.problems[:30])
    return report
