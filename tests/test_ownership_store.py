"""Ownership in the data model: each task, context and message-id record belongs to its creator.

Runs on a real Redis and on fakeredis (the same Lua scripts). The protocol's view of the same
rules, through a live server and both bindings, is in tests/protocol/test_ownership.py.
"""

from __future__ import annotations

import asyncio

import pytest

from queueapp import retention
from queueapp.states import TaskState
from queueapp.store import ContextNotAvailable, QueueStore
from queueapp.worker.updater import ClaimUpdater
from tests.faults.audit import assert_clean
from tests.faults.tools import sync_client, user_message


@pytest.fixture(params=["redis", "fakeredis"])
def any_store(request) -> QueueStore:
    return request.getfixturevalue("store" if request.param == "redis" else "fake_store")


async def create(store: QueueStore, identity: str | None, text: str = "hello", **kwargs):
    record, created = await store.create_task(user_message(text), identity=identity, **kwargs)
    assert created
    return record


async def complete_next(store: QueueStore) -> str:
    ids, _ = await store.take(1)
    [claim] = await store.lease(ids, "w1", 30)
    await ClaimUpdater(store, claim).complete("done")
    return claim.record.id


async def owner_keys(store: QueueStore) -> list[str]:
    return sorted(await store.redis.keys("a2a:idx:owner:*"))


async def test_create_stores_the_owner_of_the_task_and_of_the_new_context_in_one_step(any_store):
    r, k = any_store.redis, any_store.keys
    record = await create(any_store, "alice")
    assert await r.hget(k.active(record.id), "identity") == "alice"
    assert await r.hget(k.context_owners, record.context_id) == "alice"
    assert await r.zrange(k.index_owner_active("alice"), 0, -1) == [record.id]


async def test_anonymous_tasks_keep_todays_keys(any_store):
    r, k = any_store.redis, any_store.keys
    record = await create(any_store, None, context_id="mine")
    assert await r.hget(k.active(record.id), "identity") is None
    assert await r.hlen(k.context_owners) == 0
    assert await owner_keys(any_store) == []
    assert await r.exists(f"a2a:msgid:mine:{record.task['history'][0]['messageId']}")


async def test_a_context_of_another_identity_is_refused_and_nothing_is_written(any_store):
    r, k = any_store.redis, any_store.keys
    alice = await create(any_store, "alice")
    before = sorted(await r.keys("a2a:*"))
    for context_id, must_exist in ((alice.context_id, False), (alice.context_id, True), ("never-seen", True)):
        with pytest.raises(ContextNotAvailable):
            await any_store.create_task(user_message("let me in"), identity="bob", context_id=context_id, context_must_exist=must_exist)
    assert sorted(await r.keys("a2a:*")) == before
    assert await r.lrange(k.queue, 0, -1) == [alice.id]
    assert await any_store.context_history(alice.context_id) == alice.task["history"]


async def test_an_owned_context_takes_more_tasks_of_its_owner_only(any_store):
    alice = await create(any_store, "alice")
    again = await create(any_store, "alice", "more", context_id=alice.context_id, context_must_exist=True)
    assert again.context_id == alice.context_id
    anonymous = await create(any_store, None)
    with pytest.raises(ContextNotAvailable):  # a context made with auth off has no owner to match
        await any_store.create_task(user_message("x"), identity="alice", context_id=anonymous.context_id)
    with pytest.raises(ContextNotAvailable):  # nor is an owned context open to the anonymous caller
        await any_store.create_task(user_message("x"), identity=None, context_id=alice.context_id)


async def test_a_repeated_message_id_finds_only_the_same_identitys_task(any_store):
    message = user_message("once", message_id="m-1")
    first, created = await any_store.create_task(message, identity="alice", context_id="shared")
    assert created
    again, created = await any_store.create_task(message, identity="alice", context_id="shared")
    assert (again.id, created) == (first.id, False)
    # Bob replaying her message id in her context gets no task of hers: the context is refused first.
    with pytest.raises(ContextNotAvailable):
        await any_store.create_task(message, identity="bob", context_id="shared")
    assert await any_store.redis.exists(any_store.keys.message_id("shared", "m-1", "alice"))
    assert not await any_store.redis.exists(any_store.keys.message_id("shared", "m-1"))


async def test_lists_of_one_owner_read_its_own_indexes(any_store):
    alice_done = await create(any_store, "alice", "a1")
    await complete_next(any_store)
    await asyncio.sleep(0.002)  # distinct times, so newest-first is well defined
    alice_waiting = await create(any_store, "alice", "a2")
    bob_waiting = await create(any_store, "bob", "b1")
    await create(any_store, None, "anonymous")

    def ids(page):
        return [r.id for r in page.items]

    assert ids(await any_store.list_tasks(owner="alice")) == [alice_waiting.id, alice_done.id]
    assert (await any_store.list_tasks(owner="alice")).total == 2
    assert ids(await any_store.list_tasks(owner="bob")) == [bob_waiting.id]
    assert ids(await any_store.list_tasks(owner="alice", state=TaskState.COMPLETED)) == [alice_done.id]
    assert ids(await any_store.list_tasks(owner="alice", state=TaskState.SUBMITTED)) == [alice_waiting.id]
    assert ids(await any_store.list_tasks(owner="alice", context_id=alice_done.context_id)) == [alice_done.id]
    foreign = await any_store.list_tasks(owner="bob", context_id=alice_done.context_id)
    assert (ids(foreign), foreign.total) == ([], 0)
    assert len((await any_store.list_tasks()).items) == 4  # no owner: every task, as before


async def test_the_owner_indexes_follow_finish_retry_and_delete_and_leave_nothing(any_store):
    r, k = any_store.redis, any_store.keys
    record = await create(any_store, "alice")
    await complete_next(any_store)
    assert await r.zrange(k.index_owner_active("alice"), 0, -1) == []
    assert await r.zrange(k.index_owner_history_state("alice", "completed"), 0, -1) == [record.id]
    await any_store.retry(record.id)
    assert await r.zrange(k.index_owner_active("alice"), 0, -1) == [record.id]
    assert await r.zcard(k.index_owner_history_state("alice", "completed")) == 0
    await any_store.delete(record.id)
    assert await owner_keys(any_store) == []
    assert await r.hlen(k.context_owners) == 0


async def test_the_audit_finds_every_owned_task_in_its_place_after_a_mixed_run(store):
    ids = []
    for n in range(6):
        ids.append((await create(store, ["alice", "bob", None][n % 3], f"t{n}")).id)
    for _ in range(3):
        await complete_next(store)
    await store.request_cancel(ids[4])
    await store.retry(ids[0])
    await store.delete(ids[1])
    assert_clean(sync_client(store), [i for i in ids if i != ids[1]], quiet=False)
    # A leaked owner entry is caught.
    await store.redis.zadd(store.keys.index_owner_active("alice"), {ids[1]: 1})
    with pytest.raises(AssertionError, match="leaked"):
        assert_clean(sync_client(store), [i for i in ids if i != ids[1]], quiet=False)


async def test_retention_cleans_the_owner_indexes_and_context_owners(any_store, make_config):
    for n in range(3):
        await create(any_store, "alice", f"t{n}")
        await complete_next(any_store)
    config = make_config(A2A_TASK_RETENTION_MAX_COMPLETED_TASKS="1")
    assert await retention.apply(any_store, config) == {"completed": 2}
    [kept] = await any_store.redis.zrange(any_store.keys.index_owner_history_state("alice", "completed"), 0, -1)
    assert await owner_keys(any_store) == [any_store.keys.index_owner_history_state("alice", "completed")]
    assert list(await any_store.redis.hkeys(any_store.keys.context_owners)) == [(await any_store.require(kept)).context_id]


async def test_an_identity_with_a_colon_cannot_reach_another_owners_keys(any_store):
    k = any_store.keys
    assert k.index_owner_active("a:history:completed") != k.index_owner_history_state("a", "completed")
    assert k.message_id("c", "m", "a:b") != k.message_id("b:c", "m", "a")


async def test_backfill_gives_tasks_stored_before_owners_their_owners_again(store):
    alice = await create(store, "alice")
    await complete_next(store)
    waiting = await create(store, "alice", "still waiting")
    anonymous = await create(store, None, "no owner")
    # What an earlier version left: the identity on the task, no owner index, no context owner.
    await store.redis.delete(*await owner_keys(store), store.keys.context_owners)
    assert (await store.list_tasks(owner="alice")).items == []
    assert await store.backfill_owners() == 2
    assert [r.id for r in (await store.list_tasks(owner="alice")).items] == [waiting.id, alice.id]
    again, created = await store.create_task(user_message("more"), identity="alice", context_id=alice.context_id, context_must_exist=True)
    assert created and again.context_id == alice.context_id
    assert await store.backfill_owners() == 3  # a second run changes nothing and is safe
    assert_clean(sync_client(store), [alice.id, waiting.id, anonymous.id, again.id], quiet=False)


async def test_a_push_config_id_is_replaced_only_by_its_owner(any_store):
    record = await create(any_store, "alice")
    config = {"id": "hook", "taskId": record.id, "url": "http://127.0.0.1:9/a"}
    assert await any_store.set_push_config(record.id, "hook", config, owner="alice")
    assert await any_store.set_push_config(record.id, "ops-hook", {**config, "id": "ops-hook"}, owner="ops")
    assert not await any_store.set_push_config(record.id, "hook", {**config, "url": "http://127.0.0.1:9/b"}, owner="bob")
    assert not await any_store.set_push_config(record.id, "ops-hook", {**config, "url": "http://127.0.0.1:9/b"}, owner="alice")
    assert not await any_store.set_push_config(record.id, "hook", {**config, "url": "http://127.0.0.1:9/b"})  # no owner: auth off
    assert await any_store.set_push_config(record.id, "hook", {**config, "url": "http://127.0.0.1:9/c"}, owner="alice")
    configs = await any_store.get_push_configs(record.id)
    assert {k: (v["url"], v["owner"]) for k, v in configs.items()} == {"hook": ("http://127.0.0.1:9/c", "alice"), "ops-hook": ("http://127.0.0.1:9/a", "ops")}
