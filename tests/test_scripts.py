"""The Lua scripts against their declarations (queueapp/store/scripts.py), and finishes sent in batches."""

from __future__ import annotations

import asyncio
import copy
import re

import pytest

from queueapp import model
from queueapp.states import TaskState
from tests.store_support import create


def test_lua_scripts_spell_no_state_and_get_the_states_from_states_py():
    # A state spelled in a script would drift from states.py; the scripts use STATE.* and FINISHED.
    from queueapp.store import scripts

    for script in scripts.ALL:
        body = script.body
        assert not [s for s in TaskState if f"'{s.value}'" in body], script.name
    assert "local STATE = {SUBMITTED = 'submitted', WORKING = 'working'}" in scripts.LEASE.source
    assert "local STATE_V1 = {WORKING = 'TASK_STATE_WORKING'}" in scripts.LEASE.source


def test_no_lua_string_holds_a_comment_marker():
    # The loader finds the states and helpers a script uses in its code with comments cut at
    # '--'; a '--' inside a string would cut real code and hide a name it uses.
    from queueapp.store.script import LUA_DIR

    for path in LUA_DIR.glob("*.lua"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            before = line.split("--", 1)[0]
            assert before.count("'") % 2 == 0 and before.count('"') % 2 == 0, f"{path.name}:{number}"


def test_a_script_carries_only_the_states_and_helpers_it_uses():
    # Redis runs a script's whole text on every call: what it does not use is not there.
    from queueapp.states import lua_constants
    from queueapp.store import scripts

    assert (
        lua_constants("return #FINISHED -- STATE.WORKING")
        == "-- Generated from queueapp/states.py.\nlocal FINISHED = {'completed', 'failed', 'canceled', 'rejected'}\n"
    )
    with pytest.raises(ValueError, match="STATE.DONE is not a task state"):
        lua_constants("return STATE.DONE")
    defined = set(re.findall(r"^local function (\w+)", scripts.PAUSE.source, re.MULTILINE))
    assert defined == {"notify", "publish", "notice"}  # pause calls notify, which calls publish and notice
    assert "local function" not in scripts.TAKE.source and "local STATE" not in scripts.TAKE.source


@pytest.mark.parametrize("name", [s.name for s in __import__("queueapp.store.scripts").store.scripts.ALL])
def test_each_script_reads_exactly_the_keys_and_args_its_declaration_names(name):
    # KEYS and ARGV are declared once (queueapp/store/scripts.py); the Lua reads them by name.
    # A name the script reads but the declaration lacks (or the reverse), or a position
    # counted by hand, fails here rather than in production.
    from queueapp.store import scripts

    script = next(s for s in scripts.ALL if s.name == name)
    body = script.body
    assert not re.findall(r"\b(?:KEYS|ARGV)\[", body)
    assert set(re.findall(r"\bK\.(\w+)", body)) == {f.name for f in script.key_fields}
    assert set(re.findall(r"\bA\.(\w+)", body)) == {f.name for f in script.arg_fields}
    item_keys, item_args = ({f.name for f in fields} for fields in (script.item_key_fields, script.item_arg_fields))
    # An item's keys and arguments are read through the locals `key` and `claim` (or `item_arg`).
    assert set(re.findall(r"\bkey\.(\w+)", body)) == item_keys
    assert set(re.findall(r"\b(?:claim|item_arg)\.(\w+)", body)) == item_args
    assert ("item(n)" in body) == bool(item_keys or item_args)
    assert ("REST" in body) == script.rest


def test_a_script_call_with_a_missing_or_unknown_name_is_refused():
    from queueapp.store import scripts

    keys = {"queue": "q", "processing": "p", "paused": "x"}
    assert scripts.TAKE.flatten(keys, {"count": 3}) == (["q", "p", "x"], [3])
    with pytest.raises(TypeError, match="missing \\['paused'\\]"):
        scripts.TAKE.flatten({"queue": "q", "processing": "p"}, {"count": 3})  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="unknown \\['limit'\\]"):
        scripts.TAKE.flatten(keys, {"count": 3, "limit": 1})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(TypeError, match="missing \\['paused'\\], unknown \\['pause'\\]"):  # as many names, one misspelt
        scripts.TAKE.flatten({"queue": "q", "processing": "p", "pause": "x"}, {"count": 3})  # type: ignore[typeddict-item, typeddict-unknown-key]
    with pytest.raises(TypeError, match="history_indexes needs 4 keys"):
        scripts.RETRY.flatten({**dict.fromkeys(scripts.RetryKeys.__annotations__, "k"), "history_indexes": ["a"]}, {})  # type: ignore[arg-type]


def completed(claim):
    claim.record.task["status"] = model.status(TaskState.COMPLETED, model.now_ms())
    return claim.record


async def test_finishes_of_one_turn_go_as_one_call_and_each_caller_gets_its_own_answer(any_store):
    for i in range(4):
        await create(any_store, f"task {i}")
    ids, _ = await any_store.take(4)
    claims = await any_store.lease(ids, "w1", 30)
    tokens = [c.token for c in claims[:3]] + ["not-the-claim-token"]
    results = await asyncio.gather(
        *(any_store.finish(completed(c), model.status_event(c.record.task), token=t) for c, t in zip(claims, tokens, strict=True)),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["TaskRecord"] * 3 + ["Conflict"]
    assert all(r.finished and r.finished_ms for r in results[:3])
    states = [(await any_store.require(c.record.id)).state for c in claims]
    assert states == [TaskState.COMPLETED] * 3 + [TaskState.WORKING]
    stats = await any_store.stats(minutes=1)
    assert stats.by_state["completed"] == 3 and stats.by_state["working"] == 1 and stats.totals["completed"] == 3
    assert stats.per_minute[-1]["completed"] == 3 and sum(stats.per_minute[-1]["run_buckets"].values()) == 3


async def test_a_batch_of_finishes_is_one_script_call(store):
    for i in range(5):
        await create(store, f"task {i}")
    ids, _ = await store.take(5)
    claims = await store.lease(ids, "w1", 30)
    await store.redis.config_resetstat()
    await asyncio.gather(*(store.finish(completed(c), model.status_event(c.record.task), token=c.token) for c in claims))
    calls = await store.redis.info("commandstats")
    assert calls["cmdstat_evalsha"]["calls"] == 1
    assert [r.state for r in (await store.history()).items] == [TaskState.COMPLETED] * 5


async def test_a_task_whose_data_breaks_its_finish_fails_alone_and_the_rest_of_the_batch_is_counted(store):
    for i in range(3):
        await create(store, f"task {i}")
    ids, _ = await store.take(3)
    claims = await store.lease(ids, "w1", 30)
    damaged = claims[2].record.id
    await store.redis.delete(store.keys.active(damaged))
    await store.redis.set(store.keys.active(damaged), "not a hash")  # HGETALL on it is an error
    results = await asyncio.gather(*(store.finish(completed(c), model.status_event(c.record.task), token=c.token) for c in claims), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["TaskRecord", "TaskRecord", "StoreError"]
    assert "could not be written" in str(results[2]) and "WRONGTYPE" in str(results[2])
    stats = await store.stats(minutes=1)
    assert stats.totals["completed"] == 2 and stats.by_state["completed"] == 2 and stats.by_state["working"] == 1
    assert stats.per_minute[-1]["completed"] == 2
    assert await store.redis.ttl(store.keys.stats_minute(model.now_ms() // 60000)) > 7000


async def test_a_task_whose_data_breaks_its_claim_is_left_for_recovery_and_the_others_are_claimed(store):
    for i in range(3):
        await create(store, f"task {i}")
    ids, _ = await store.take(3)
    await store.redis.delete(store.keys.events(ids[1]))
    await store.redis.set(store.keys.events(ids[1]), "not a list")  # appending its event is an error
    claims = await store.lease(ids, "w1", 30)
    assert sorted(c.record.id for c in claims) == sorted([ids[0], ids[2]])
    # Not lost: back in the processing list, with the lease its claim got, for the reaper.
    assert await store.redis.lrange(store.keys.processing, 0, -1) == [ids[1]]
    assert await store.redis.zscore(store.keys.leases, ids[1]) is not None
    states = [(await store.require(i)).state.value for i in ids]
    assert (await store.stats(minutes=1)).by_state["working"] == states.count("working") == 3  # counts match what is stored


def test_a_declaration_of_items_without_fields_is_refused():
    from typing import TypedDict

    from queueapp.store.script import NoItem, Script

    class Keys(TypedDict):
        queue: str

    with pytest.raises(TypeError, match="at least one key or argument"):
        Script("broken", Keys, Keys, NoItem, NoItem)


async def test_settle_returns_once_every_finish_asked_for_has_reached_redis(store):
    for i in range(2):
        await create(store, f"task {i}")
    ids, _ = await store.take(2)
    claims = await store.lease(ids, "w1", 30)
    pending = [asyncio.ensure_future(store.finish(completed(c), model.status_event(c.record.task), token=c.token)) for c in claims]
    await asyncio.sleep(0)  # the callers have asked; nothing has been sent yet
    await store.settle_finishes()
    assert await store.redis.zcard(store.keys.index_history_state("completed")) == 2
    await asyncio.gather(*pending)


async def test_two_finishes_of_one_task_in_one_call_finish_it_once(any_store):
    # A worker's finish and a second one (a cancel, or a retried write) can meet in one turn.
    await create(any_store)
    ids, _ = await any_store.take(1)
    [claim] = await any_store.lease(ids, "w1", 30)
    record = completed(claim)
    again = copy.deepcopy(record)
    results = await asyncio.gather(
        any_store.finish(record, model.status_event(record.task), token=claim.token),
        any_store.finish(again, model.status_event(again.task), token=claim.token),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["TaskRecord", "TaskNotFound"]
    assert (await any_store.require(record.id)).state is TaskState.COMPLETED
    assert not await any_store.redis.exists(any_store.keys.active(record.id))
    stats = await any_store.stats(minutes=1)
    assert stats.totals["completed"] == 1 and stats.by_state["completed"] == 1 and stats.by_state.get("working", 0) == 0
    assert [r.id for r in (await any_store.history()).items] == [record.id]
