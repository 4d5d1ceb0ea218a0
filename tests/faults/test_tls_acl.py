"""Redis security: a TLS URL end to end, and ACL users limited to the key prefix.

Real redis-server processes on loopback (ha_support.py); the system under test runs as
real ``serve``, ``runworker`` and ``cleanup_tasks`` processes.
"""

from __future__ import annotations

import uuid

import pytest

from tests.faults.audit import assert_clean, every_task_id
from tests.faults.ha_support import ADMIN_PASSWORD, TLSRedis, all_completed, dashboard_follows_the_queue, send

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def tls_redis():
    server = TLSRedis().start()
    yield server
    server.stop()


async def test_tls_url_serves_and_works_end_to_end(tls_redis, processes):
    tls_redis.server.client().flushall()
    processes.worker(tls_redis.url)
    server = processes.serve(tls_redis.url, A2A_EMBEDDED_WORKERS="0")
    reply = send(server.url, "over TLS", str(uuid.uuid4()), wait=True)
    assert reply.status_code == 200 and reply.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    # The clients really are TLS clients of the TLS port.
    others = [c for c in tls_redis.server.client().client_list() if c["cmd"] != "client|list"]
    assert others and all(c["laddr"].endswith(f":{tls_redis.tls_port}") for c in others)


def test_tls_with_an_unknown_certificate_authority_fails_clearly(tls_redis, processes):
    url = tls_redis.url.partition("?")[0]  # the system's CAs do not know the test CA
    worker = processes.worker(url, A2A_QUEUE_OPTIONS_MAX_RETRIES="0")
    assert worker.wait(60) != 0
    assert "cannot reach Redis" in worker.output and "certificate verify failed" in worker.output


@pytest.fixture
def acl_only(redis_server, redis_url):
    """The session's Redis with its password-less default user switched off; yields an admin client."""
    root = redis_server.client()
    root.execute_command("ACL", "SETUSER", "ha-admin", "reset", "on", ">admin-pw", "~*", "&*", "+@all")
    admin = redis_server.client(username="ha-admin", password="admin-pw")
    admin.execute_command("ACL", "SETUSER", "default", "off")
    try:
        yield admin
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "on")
        admin.execute_command("ACL", "DELUSER", "ha-admin", "a2a-app", "other-app")


async def test_acl_user_limited_to_the_prefix_runs_every_command(acl_only, redis_url, processes):
    """Every feature works as a user that may touch only a2a:* (processes stop before the default user returns)."""
    admin = acl_only
    admin.execute_command("ACL", "SETUSER", "a2a-app", "reset", "on", ">s3cret", "~a2a:*", "&a2a:*", "+@all", "-@dangerous")
    env = {"A2A_QUEUE_CREDENTIALS": "username:a2a-app,password:s3cret", "A2A_AGENT": "demo", "A2A_QUEUE_OPTIONS_MAXMEMORY_POLICY": "noeviction"}
    server = processes.serve(redis_url, A2A_EMBEDDED_WORKERS="0", A2A_DASHBOARD_ADMIN_PASSWORD=ADMIN_PASSWORD, **env)
    context_id = str(uuid.uuid4())
    ids = []
    await dashboard_follows_the_queue(server.url, lambda: ids.append(send(server.url, "first", context_id).json()["task"]["id"]))
    worker = processes.worker(redis_url, **env)
    ids += [send(server.url, f"sleep 0.05 #{n}", context_id).json()["task"]["id"] for n in range(10)]
    failed = send(server.url, "fail on purpose", context_id, wait=True).json()["task"]
    assert failed["status"]["state"] == "TASK_STATE_FAILED"
    await all_completed(admin, ids)
    assert len(ids) == 11
    cleanup = processes.command(redis_url, "cleanup_tasks", **env, A2A_TASK_RETENTION_MAX_COMPLETED_TASKS="4")
    assert cleanup.wait(60) == 0, cleanup.output
    assert admin.zcard("a2a:idx:history:completed") == 4
    # CONFIG is refused to this user: the policy check warns and everything goes on.
    assert "Could not set Redis maxmemory-policy" in worker.output and "Could not read Redis maxmemory-policy" in worker.output
    assert "NOPERM" not in worker.output + server.output + cleanup.output
    assert " ERROR " not in server.output  # the dashboard's Channels layer authenticated too
    assert not [key for key in admin.keys("*") if not key.startswith("a2a:")]
    assert_clean(admin, every_task_id(admin))


def test_acl_user_outside_the_prefix_is_refused_at_start(acl_only, redis_url, processes):
    acl_only.execute_command("ACL", "SETUSER", "other-app", "reset", "on", ">pw", "~other:*", "&other:*", "+@all", "-@dangerous")
    server = processes.serve(redis_url, wait=False, A2A_QUEUE_CREDENTIALS="username:other-app,password:pw")
    worker = processes.worker(redis_url, A2A_QUEUE_CREDENTIALS="username:other-app,password:pw")
    for proc in (server, worker):
        assert proc.wait(60) != 0
        assert "the Redis user may not use the keys under a2a: grant it ~a2a:* and &a2a:*" in proc.output
    assert acl_only.dbsize() == 0  # nothing half-written
