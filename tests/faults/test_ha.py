"""High availability and Redis security: Sentinel failover, Redis Cluster, TLS and ACL users.

Every deployment is made of real redis-server processes on loopback (see ha_support.py), and
the system under test runs as real ``serve``, ``runworker`` and ``cleanup_tasks`` processes.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from queueapp import config as config_module
from queueapp.connection import connect
from queueapp.events import NotifyListener
from queueapp.ha import MASTER_CHECK_INTERVAL_S, parse_cluster_url, parse_sentinel_url
from queueapp.store import NotReplicated, QueueStore
from queueapp.store.keys import Keys
from tests.faults.audit import assert_clean, every_task_id
from tests.faults.ha_support import ADMIN_PASSWORD, LocalCluster, Redis6, SentinelGroup, all_completed, dashboard_follows_the_queue, send
from tests.faults.tools import eventually, user_message

pytestmark = pytest.mark.faults

HASH_TAG = "{a2a}"


def first_message(pubsub, within: float = 1.0) -> dict | None:
    """The first published message a plain subscription got (its subscribe confirmations skipped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return message
    return None


async def open_store(**env: str) -> QueueStore:
    cfg = config_module.load({"A2A_DATA_DIR": "/nonexistent", **env})
    return QueueStore.from_config(await connect(cfg, check_policy=False), cfg)


# ---- URLs and configuration -------------------------------------------------------------------


def test_sentinel_and_cluster_urls_are_parsed():
    hosts, master, db, auth = parse_sentinel_url("redis+sentinel://u:p%40ss@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2")
    assert (hosts, master, db, auth) == ([("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)], "mymaster", 2, {"username": "u", "password": "p@ss"})
    assert parse_cluster_url("rediss+cluster://n1:7000,n2:7001?ssl_ca_certs=/ca.pem") == ([("n1", 7000), ("n2", 7001)], {})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"A2A_QUEUE_URL": "redis+cluster://127.0.0.1:7000"}, "A2A_QUEUE_KEY_PREFIX='a2a' is invalid for a Redis Cluster: expected a hash tag such as {a2a}"),
        ({"A2A_QUEUE_URL": "redis+cluster://127.0.0.1:7000", "A2A_QUEUE_KEY_PREFIX": "{}"}, "expected a hash tag"),
        ({"A2A_QUEUE_URL": "redis+cluster://127.0.0.1:7000/3", "A2A_QUEUE_KEY_PREFIX": HASH_TAG}, "a Redis Cluster has only database 0"),
        (
            {"A2A_QUEUE_URL": "redis+cluster://127.0.0.1:7000", "A2A_QUEUE_KEY_PREFIX": HASH_TAG, "A2A_QUEUE_OPTIONS_DB": "2"},
            "A2A_QUEUE_OPTIONS_DB=2 is invalid",
        ),
        (
            {"A2A_QUEUE_URL": "redis+cluster://127.0.0.1:7000", "A2A_QUEUE_KEY_PREFIX": HASH_TAG, "A2A_QUEUE_REPLICA_ACKS": "1"},
            "A2A_QUEUE_REPLICA_ACKS=1 is not supported",
        ),
        ({"A2A_QUEUE_URL": "redis+cluster://host:port", "A2A_QUEUE_KEY_PREFIX": HASH_TAG}, "'host:port' is not host:port"),
        ({"A2A_QUEUE_URL": "redis+sentinel://127.0.0.1:26379"}, "a Sentinel URL needs the master name"),
        ({"A2A_QUEUE_URL": "redis+sentinel://127.0.0.1:26379/mymaster/zero"}, "must be a number, not 'zero'"),
        ({"A2A_QUEUE_URL": "memcached://127.0.0.1"}, "redis+sentinel:// or redis+cluster:// URL"),
        ({"A2A_QUEUE_REPLICA_ACKS": "-1"}, "A2A_QUEUE_REPLICA_ACKS='-1' is invalid"),
        ({"A2A_QUEUE_REPLICA_ACKS": "1"}, "A2A_QUEUE_REPLICA_ACKS=1 needs A2A_QUEUE_URL"),
    ],
)
def test_bad_high_availability_settings_are_refused(make_config, env, expected):
    with pytest.raises(config_module.ConfigError, match="^A2A_") as info:
        make_config(**env)
    assert expected in str(info.value)


def test_worker_refuses_a_cluster_without_hash_tag_prefix(processes):
    worker = processes.worker(None, A2A_QUEUE_URL="redis+cluster://127.0.0.1:7000")
    assert worker.wait(60) != 0
    assert "A2A_QUEUE_KEY_PREFIX='a2a' is invalid for a Redis Cluster" in worker.output


# ---- Sentinel ---------------------------------------------------------------------------------


@pytest.fixture
def sentinels():
    group = SentinelGroup().start()
    yield group
    group.stop()


async def test_sentinel_client_follows_the_new_master_after_the_old_one_dies():
    """The pooled connection points at a dead master; the next command must go to the elected one."""
    group = SentinelGroup(fenced=False).start()
    store = await open_store(A2A_QUEUE_URL=group.url, A2A_QUEUE_OPTIONS_TIMEOUT="1s")
    try:
        record, _ = await store.create_task(user_message("before"))
        old = group.master_port()
        group.master.kill()
        new = await asyncio.to_thread(group.wait_for_new_master, old)
        assert new == group.replica.port
        after, _ = await store.create_task(user_message("after"))
        assert {record.id, after.id} <= set(every_task_id(group.replica.client()))
    finally:
        await store.redis.aclose()
        group.stop()


async def test_sentinel_retry_of_a_dropped_command_asks_the_sentinels_again():
    """redis-py 6's async Sentinel retries reconnect to the address they had (redis-py issue 3874).

    After a failover the old master stays a master for several seconds; a command whose
    connection drops must be retried on the new master, not on the old one.
    """
    group = SentinelGroup(fenced=False).start()
    store = await open_store(A2A_QUEUE_URL=group.url, A2A_QUEUE_OPTIONS_TIMEOUT="20s")
    try:
        old, new = group.master.client(), group.replica.client()
        waiting = asyncio.create_task(store.redis.blmove("a2a:queue", "a2a:processing", 10, "RIGHT", "LEFT"))
        await eventually(lambda: old.info("clients")["blocked_clients"] == 1, timeout=5, message="BLMOVE blocked on the first master")
        await asyncio.to_thread(group.failover)
        assert old.info("clients")["blocked_clients"] == 1  # still a master, still blocked there
        old.client_kill_filter(_type="normal", skipme=True)
        await eventually(lambda: new.info("clients")["blocked_clients"] == 1, timeout=15, message="BLMOVE retried on the new master")
        new.lpush("a2a:queue", "task-1")
        assert await waiting == "task-1"
    finally:
        await store.redis.aclose()
        group.stop()


async def test_sentinel_client_leaves_a_demoted_master_that_still_accepts_writes():
    """Split brain: after SENTINEL FAILOVER the old master stays a master for seconds; writes must not go there."""
    group = SentinelGroup(fenced=False).start()
    store = await open_store(A2A_QUEUE_URL=group.url)
    try:
        await store.redis.set("a2a:probe", "before")  # a pooled connection to the first master
        await asyncio.to_thread(group.failover)
        assert group.master.client().info("replication")["role"] == "master"  # not reconfigured yet
        await asyncio.sleep(MASTER_CHECK_INTERVAL_S)
        await store.redis.set("a2a:probe", "after")
        assert group.replica.client().get("a2a:probe") == "after"
        assert group.master.client().get("a2a:probe") == "before"
    finally:
        await store.redis.aclose()
        group.stop()


async def test_unconfirmed_task_is_not_acknowledged_and_a_retry_makes_no_duplicate(redis_server, redis_url, caplog):
    """A Redis without replicas cannot confirm: the caller gets a clear error, and retries stay idempotent."""
    store = await open_store(A2A_QUEUE_URL=redis_url, A2A_QUEUE_REPLICA_ACKS="1")
    # Said at start, before the first client is refused.
    assert "A2A_QUEUE_REPLICA_ACKS=1 but Redis has 0 connected replicas" in caplog.text
    try:
        message = user_message("hello", "message-1")
        for _ in range(2):
            with pytest.raises(NotReplicated, match="0 of 1 replicas confirmed the task within 1000 ms; a retry with the same messageId and contextId finds it"):
                await store.create_task(message, context_id="ctx-1")
        assert len(every_task_id(redis_server.client())) == 1
    finally:
        await store.redis.aclose()


async def test_sentinel_failover_under_load_loses_no_acknowledged_task(sentinels, processes):
    env = {
        "A2A_AGENT": "demo", "A2A_QUEUE_REPLICA_ACKS": "1", "A2A_QUEUE_OPTIONS_TIMEOUT": "2s",
        "A2A_WORKER_LEASE": "3s", "A2A_WORKER_HEARTBEAT_INTERVAL": "300ms", "A2A_WORKER_SHUTDOWN_GRACE": "2s",
    }  # fmt: skip
    processes.worker(sentinels.url, **env)
    server = processes.serve(sentinels.url, A2A_EMBEDDED_WORKERS="0", **env)
    store = await open_store(A2A_QUEUE_URL=sentinels.url, A2A_QUEUE_REPLICA_ACKS="1", A2A_QUEUE_OPTIONS_TIMEOUT="2s")
    context_id = str(uuid.uuid4())
    acknowledged: list[str] = []
    refusals = 0

    async def submit(count: int) -> None:
        nonlocal refusals
        for n in range(count):
            message_id = str(uuid.uuid4())
            while True:  # a client retries with the same messageId until the task is acknowledged
                try:
                    record, _ = await store.create_task(user_message(f"sleep 0.05 #{n}", message_id), context_id=context_id)
                    acknowledged.append(record.id)
                    break
                except Exception:
                    refusals += 1
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.01)

    try:
        before = send(server.url, "hello before", context_id, wait=True)
        assert before.status_code == 200 and before.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        load = asyncio.create_task(submit(150))
        await eventually(lambda: len(acknowledged) >= 40, timeout=30, message="load before the failover")
        old_port = sentinels.master_port()
        assert await asyncio.to_thread(sentinels.failover) != old_port
        await load
        master = sentinels.current_master().client()
        await all_completed(master, acknowledged)
        # serve followed the new master too: a blocking send through it completes.
        after = await eventually(lambda: (r := send(server.url, "hello after", context_id, wait=True)).status_code == 200 and r, timeout=60, interval=0.5)
        assert after.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        acknowledged += [before.json()["task"]["id"], after.json()["task"]["id"]]
        await eventually(lambda: not master.zcard("a2a:leases") and not master.llen("a2a:processing"), timeout=30)
        report = assert_clean(master, acknowledged)
        assert report.by_state["completed"] == len(set(acknowledged)) == 152
        assert server.stop(timeout=10) == 0  # and it still shuts down cleanly
    finally:
        await store.redis.aclose()


# ---- Cluster ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    deployment = LocalCluster().start()
    yield deployment
    deployment.stop()


@pytest.fixture
def cluster_client(cluster):
    for node in cluster.nodes:
        node.client().flushall()
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port, decode_responses=True)
    yield client
    client.close()


async def test_cluster_runs_the_whole_flow_in_one_slot(cluster, cluster_client, processes):
    env = {"A2A_QUEUE_KEY_PREFIX": HASH_TAG, "A2A_AGENT": "demo"}
    server = processes.serve(cluster.url, A2A_EMBEDDED_WORKERS="0", A2A_DASHBOARD_ADMIN_PASSWORD=ADMIN_PASSWORD, **env)
    store = await open_store(A2A_QUEUE_URL=cluster.url, **env)
    try:
        context_id = str(uuid.uuid4())
        ids = []
        await dashboard_follows_the_queue(server.url, lambda: ids.append(send(server.url, "first", context_id).json()["task"]["id"]))
        processes.worker(cluster.url, **env)
        ids += [send(server.url, f"sleep 0.05 #{n}", context_id).json()["task"]["id"] for n in range(20)]
        waited = send(server.url, "chunks 3", context_id, wait=True).json()["task"]
        assert waited["status"]["state"] == "TASK_STATE_COMPLETED" and waited["artifacts"]
        ids.append(waited["id"])
        # input-required, then the reply continues it on the queue.
        asked = send(server.url, "ask your name?", context_id, wait=True).json()["task"]
        assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        await store.continue_task(asked["id"], user_message("Ada"))
        ids.append(asked["id"])
        await all_completed(cluster_client, ids, HASH_TAG)
        # Retry, list, stats and delete work on the cluster too.
        await store.retry(ids[0])
        await all_completed(cluster_client, ids, HASH_TAG)
        page = await store.list_tasks(context_id=context_id, limit=5)
        assert len(page.items) == 5 and page.total == len(ids)
        assert (await store.stats()).by_state["completed"] == len(ids)
        await store.delete(ids.pop())
        cleanup = processes.command(cluster.url, "cleanup_tasks", **env, A2A_TASK_RETENTION_MAX_COMPLETED_TASKS="10")
        assert cleanup.wait(60) == 0, cleanup.output
        assert cluster_client.zcard(f"{HASH_TAG}:idx:history:completed") == 10
        # Every key of the queue is on the one node that owns the hash tag's slot.
        owner = cluster.node_for(HASH_TAG)
        for node in cluster.nodes:
            keys = node.client().keys("*")
            assert all(key.startswith(f"{HASH_TAG}:") for key in keys)
            assert bool(keys) == (node is owner)
        assert " ERROR " not in server.output
        remaining = every_task_id(cluster_client, prefix=HASH_TAG)
        assert_clean(cluster_client, remaining, prefix=HASH_TAG)
    finally:
        await store.redis.aclose()


async def test_cluster_notices_use_sharded_pubsub(cluster, cluster_client):
    store = await open_store(A2A_QUEUE_URL=cluster.url, A2A_QUEUE_KEY_PREFIX=HASH_TAG)
    owner = cluster.node_for(HASH_TAG).client()
    plain = owner.pubsub(ignore_subscribe_messages=True)
    plain.subscribe(Keys(HASH_TAG).notify)
    notices: list[dict] = []
    listener = NotifyListener(store)
    listener.add(notices.append)
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        record, _ = await store.create_task(user_message("hello"))
        await store.pause(True)
        await eventually(lambda: len(notices) >= 2, timeout=10, message="two notices")
        assert notices[0]["task_id"] == record.id and notices[0]["state"] == "submitted"
        assert notices[1]["event"] == "paused" and notices[1]["task_id"] == ""  # the common notice shape, no task
        # Published with SPUBLISH: a plain SUBSCRIBE on the same channel hears nothing.
        assert first_message(plain) is None
    finally:
        plain.close()
        await listener.stop()
        await store.redis.aclose()


@pytest.fixture
def redis6():
    server = Redis6().start()
    yield server
    server.stop()


async def hears_notices(store: QueueStore, plain_subscriber) -> tuple[list[dict], object]:
    """Notices of one created task through the listener, and what a plain SUBSCRIBE got."""
    plain = plain_subscriber.pubsub(ignore_subscribe_messages=True)
    plain.subscribe(store.keys.notify)
    notices: list[dict] = []
    listener = NotifyListener(store)
    listener.add(notices.append)
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        await store.create_task(user_message("hello"))
        await eventually(lambda: notices, timeout=10, message="a notice")
        return notices, first_message(plain)
    finally:
        plain.close()
        await listener.stop()
        await store.redis.aclose()


async def test_hash_tag_prefix_on_a_single_redis_7_uses_sharded_pubsub(redis_server, redis_url):
    store = await open_store(A2A_QUEUE_URL=redis_url, A2A_QUEUE_KEY_PREFIX=HASH_TAG)
    notices, plain = await hears_notices(store, redis_server.client())
    assert notices[0]["state"] == "submitted" and plain is None


async def test_hash_tag_prefix_on_redis_6_falls_back_to_plain_pubsub(redis6):
    store = await open_store(A2A_QUEUE_URL=redis6.url, A2A_QUEUE_KEY_PREFIX=HASH_TAG)
    notices, plain = await hears_notices(store, redis6.client())
    assert notices[0]["state"] == "submitted" and plain is not None and "submitted" in plain["data"]
