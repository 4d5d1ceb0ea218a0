"""The Lua scripts, one file per transition under ``lua/``, and what each one takes.

Each script's KEYS and ARGV are declared here once, as two TypedDicts, and nowhere else:

- the Python call passes them by name (``scripts.finish(keys={...}, args={...})``), which
  the type checker checks, and the call refuses a missing or unknown name at run time;
- the Lua side reads them by the same names (``K.active``, ``A.task_id``) from a preamble
  generated from the declaration, so no script counts positions by hand.

A script may also take a variable part: several items (``lease`` takes three keys and two
arguments per task) or trailing field/value pairs to store on the task hash (``rest``).
Every key a script touches is in KEYS, so the scripts run on Redis Cluster when the key
prefix is a hash tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from queueapp.store.pipelining import AutoPipeline
from queueapp.store.script import BoundScript, NoItem, PerState, Script

if TYPE_CHECKING:
    from queueapp.connection import RedisClient

# ---- the declarations -----------------------------------------------------------------
# The order of the fields is the order of KEYS and ARGV.


class CreateKeys(TypedDict):
    """What every create of one call shares; each task's own keys are its item's."""

    queue: str
    contexts: str
    active_index: str
    counts: str
    context_owners: str


class CreateArgs(TypedDict):
    channel: str


class CreateItemKeys(TypedDict):
    active: str  # the task's hash while unfinished
    deadletter: str  # the task's hash once finished (checked: the id must be new)
    context_index: str
    events: str
    message_id: str  # the idempotency key of the message id
    owner_active_index: str


class CreateItemArgs(TypedDict):
    task_id: str
    context_id: str
    task_json: str
    now_ms: int
    message_id_ttl_ms: int  # 0: no message id to remember
    event: str  # the first event, as stored (reads.event_entry)
    owner: str  # '' with auth off
    context_must_exist: str  # '1' for a context the client named with auth on
    trace: str  # the caller's W3C traceparent, '' for none


class UpdateKeys(TypedDict):
    active: str
    active_index: str
    context_index: str
    contexts: str
    counts: str
    events: str
    queue: str
    leases: str
    processing: str
    push_configs: str
    owner_active_index: str


class UpdateArgs(TypedDict):
    task_id: str
    guard_kind: str  # 'token' | 'rev' | 'lease' | 'none' (see guard_ok in _common.lua)
    guard_value: str
    state: str
    task_json: str
    now_ms: int
    event: str  # as stored (reads.event_entry), '' for none
    action: str  # '' | 'release' | 'requeue' | 'requeue_front'
    channel: str
    events_maxlen: int


class FinishKeys(TypedDict):
    """What every finish of one call shares; each task's own keys are its item's."""

    counts: str
    active_index: str
    contexts: str
    queue: str
    leases: str
    processing: str
    processing_seen: str
    cancels: str
    stats_minute: str


class FinishArgs(TypedDict):
    now_ms: int
    channel: str
    events_maxlen: int
    events_ttl_ms: int
    stats_ttl_s: int


class FinishItemKeys(TypedDict):
    active: str
    deadletter: str
    context_index: str
    events: str
    history_index: str  # of the final state
    push_configs: str
    owner_active_index: str
    owner_history_index: str  # of the final state


class FinishItemArgs(TypedDict):
    task_id: str
    guard_kind: str  # 'token' | 'rev' | 'lease' | 'cancel' | 'none'
    guard_value: str
    state: str
    task_json: str
    event: str  # as stored (reads.event_entry)
    wait_ms: int  # -1 when not measured
    run_ms: int  # -1 when not measured
    wait_bucket: str  # the histogram field (histogram.py), '' when not measured
    run_bucket: str
    extra_json: str  # a JSON object of fields the history keeps besides the hash's ('{}' for none): the error of a failed task
    meta_json: str  # with guard 'token': the history's bookkeeping from the claim (TaskRecord.history_meta), the error included; else ''


class RetryKeys(TypedDict):
    deadletter: str
    active: str
    queue: str
    active_index: str
    context_index: str
    contexts: str
    counts: str
    events: str
    owner_active_index: str
    history_indexes: PerState
    owner_history_indexes: PerState


class RetryArgs(TypedDict):
    task_id: str
    rev: str  # the revision the caller read
    task_json: str
    now_ms: int
    event: str  # as stored (reads.event_entry)
    channel: str
    events_maxlen: int


class DeleteKeys(TypedDict):
    """What every delete of one call shares; each task's own keys are its item's."""

    contexts: str
    counts: str
    queue: str
    leases: str
    processing: str
    cancels: str
    context_owners: str
    active_index: str
    history_indexes: PerState


class DeleteArgs(TypedDict):
    channel: str


class DeleteItemKeys(TypedDict):
    active: str
    deadletter: str
    legacy_context: str  # the set of a context's task ids that earlier versions kept
    context_index: str
    events: str
    push_configs: str
    owner_active_index: str
    owner_history_indexes: PerState


class DeleteItemArgs(TypedDict):
    task_id: str
    context_id: str
    only_finished: str  # '1' to refuse an unfinished task


class TakeKeys(TypedDict):
    queue: str
    processing: str
    paused: str


class TakeArgs(TypedDict):
    count: int


class LeaseKeys(TypedDict):
    processing: str
    leases: str
    processing_seen: str
    counts: str
    active_index: str
    queue: str
    paused: str


class LeaseArgs(TypedDict):
    now_ms: int
    deadline_ms: int
    worker_id: str
    now_iso: str
    channel: str
    events_maxlen: int


class LeaseItemKeys(TypedDict):
    active: str
    events: str
    push_configs: str


class TaskToken(TypedDict):
    task_id: str
    token: str


class HeartbeatKeys(TypedDict):
    workers: str
    worker: str
    leases: str
    cancels: str


class HeartbeatArgs(TypedDict):
    worker_id: str
    now_ms: int
    deadline_ms: int
    info_json: str
    worker_ttl_s: int


class HeartbeatItemKeys(TypedDict):
    active: str


class RecoverKeys(TypedDict):
    processing: str
    processing_seen: str
    leases: str
    queue: str


class RecoverArgs(TypedDict):
    now_ms: int
    grace_ms: int


class PauseKeys(TypedDict):
    paused: str
    queue: str


class PauseArgs(TypedDict):
    paused: str  # '1' to pause, '0' to resume
    channel: str


CREATE: Script[CreateKeys, CreateArgs, CreateItemKeys, CreateItemArgs] = Script("create", CreateKeys, CreateArgs, CreateItemKeys, CreateItemArgs)
UPDATE: Script[UpdateKeys, UpdateArgs, NoItem, NoItem] = Script("update", UpdateKeys, UpdateArgs, rest=True)
FINISH: Script[FinishKeys, FinishArgs, FinishItemKeys, FinishItemArgs] = Script("finish", FinishKeys, FinishArgs, FinishItemKeys, FinishItemArgs)
RETRY: Script[RetryKeys, RetryArgs, NoItem, NoItem] = Script("retry", RetryKeys, RetryArgs)
DELETE: Script[DeleteKeys, DeleteArgs, DeleteItemKeys, DeleteItemArgs] = Script("delete", DeleteKeys, DeleteArgs, DeleteItemKeys, DeleteItemArgs)
TAKE: Script[TakeKeys, TakeArgs, NoItem, NoItem] = Script("take", TakeKeys, TakeArgs)
LEASE: Script[LeaseKeys, LeaseArgs, LeaseItemKeys, TaskToken] = Script("lease", LeaseKeys, LeaseArgs, LeaseItemKeys, TaskToken)
HEARTBEAT: Script[HeartbeatKeys, HeartbeatArgs, HeartbeatItemKeys, TaskToken] = Script("heartbeat", HeartbeatKeys, HeartbeatArgs, HeartbeatItemKeys, TaskToken)
RECOVER: Script[RecoverKeys, RecoverArgs, NoItem, NoItem] = Script("recover", RecoverKeys, RecoverArgs)
PAUSE: Script[PauseKeys, PauseArgs, NoItem, NoItem] = Script("pause", PauseKeys, PauseArgs)
class SetPushConfigKeys(TypedDict):
    push_configs: str


class SetPushConfigArgs(TypedDict):
    config_id: str
    config_json: str  # the config as stored, its owner field included
    owner_field: str  # the field of a stored config that names its owner
    owner: str  # '' for none (auth off)


SET_PUSH_CONFIG: Script[SetPushConfigKeys, SetPushConfigArgs, NoItem, NoItem] = Script("set_push_config", SetPushConfigKeys, SetPushConfigArgs)


class ReadEventsKeys(TypedDict):
    events: str


class ReadEventsArgs(TypedDict):
    after: str  # the id of the last event the reader has, or '0-0'
    count: int


class LastEventArgs(TypedDict):
    pass


READ_EVENTS: Script[ReadEventsKeys, ReadEventsArgs, NoItem, NoItem] = Script("read_events", ReadEventsKeys, ReadEventsArgs)
LAST_EVENT: Script[ReadEventsKeys, LastEventArgs, NoItem, NoItem] = Script("last_event", ReadEventsKeys, LastEventArgs)
ALL: tuple[Script[Any, Any, Any, Any], ...] = (CREATE, UPDATE, FINISH, RETRY, DELETE, TAKE, LEASE, HEARTBEAT, RECOVER, PAUSE, SET_PUSH_CONFIG, READ_EVENTS, LAST_EVENT)


class Scripts:
    """The scripts of one Redis client. Calls share one :class:`AutoPipeline`, so many running tasks share round trips."""

    def __init__(self, client: RedisClient):
        self.pipeline = AutoPipeline(client)
        self.create = BoundScript(CREATE, self.pipeline)
        self.update = BoundScript(UPDATE, self.pipeline)
        self.finish = BoundScript(FINISH, self.pipeline)
        self.retry = BoundScript(RETRY, self.pipeline)
        self.delete = BoundScript(DELETE, self.pipeline)
        self.take = BoundScript(TAKE, self.pipeline)
        self.lease = BoundScript(LEASE, self.pipeline)
        self.heartbeat = BoundScript(HEARTBEAT, self.pipeline)
        self.recover = BoundScript(RECOVER, self.pipeline)
        self.pause = BoundScript(PAUSE, self.pipeline)
        self.set_push_config = BoundScript(SET_PUSH_CONFIG, self.pipeline)
        self.read_events = BoundScript(READ_EVENTS, self.pipeline)
        self.last_event = BoundScript(LAST_EVENT, self.pipeline)
