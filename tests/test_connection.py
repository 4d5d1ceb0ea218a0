"""Connecting to Redis: the start-up line, no fallback, the eviction policy, and losing Redis while running."""

from __future__ import annotations

import logging
import signal

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from django.test import RequestFactory
from redis.asyncio.sentinel import MasterNotFoundError

from queueapp import config as config_module
from queueapp import views
from queueapp.connection import RedisUnavailable, channel_layers, check_eviction_policy, connect, describe, is_outage, make_async_client, redis_error_text
from queueapp.protocol import errors
from queueapp.store import QueueStore
from tests.faults.tools import eventually, submit
from tests.support import RedisServer, free_port, wait_until


@pytest.fixture
def own_redis():
    """A redis-server this test may kill and restart, with AOF so that it keeps its data."""
    servers = [RedisServer("--appendonly", "yes", "--appendfsync", "always")]
    servers[0].start()

    def restart() -> RedisServer:
        old = servers[-1]
        old.kill(signal.SIGKILL)
        servers.append(RedisServer("--appendonly", "yes", "--appendfsync", "always", port=old.port, folder=old.folder).start())
        return servers[-1]

    servers[0].restart = restart
    yield servers[0]
    servers[-1].stop()


async def test_connect_logs_the_address_and_db(make_config, redis_url, caplog):
    caplog.set_level(logging.INFO, "queueapp.connection")
    client = await connect(make_config(A2A_QUEUE_URL=redis_url, A2A_QUEUE_OPTIONS_DB="3"))
    try:
        assert await client.ping()
        assert client.connection_pool.connection_kwargs["db"] == 3
    finally:
        await client.aclose()
    port = redis_url.split(":")[2].split("/")[0]
    assert f"Connected to Redis, addr=127.0.0.1:{port}, db=3" in caplog.text


async def test_unreachable_redis_raises_a_clear_error(make_config):
    port = free_port()
    cfg = make_config(A2A_QUEUE_URL=f"redis://127.0.0.1:{port}/1", A2A_QUEUE_OPTIONS_MAX_RETRIES="1", A2A_QUEUE_OPTIONS_TIMEOUT="300ms")
    with pytest.raises(RedisUnavailable, match=rf"^cannot reach Redis at addr=127.0.0.1:{port}, db=1: "):
        await connect(cfg)


@pytest.mark.parametrize(
    ("url", "db", "expected"),
    [
        ("redis://user:secret@cache.example:6380/2", None, "addr=cache.example:6380, db=2"),
        ("rediss://cache.example:6390", 4, "addr=cache.example:6390, db=4"),
        ("unix:///run/redis.sock", None, "addr=/run/redis.sock, db=0"),
        ("unix:///run/redis.sock?db=3", None, "addr=/run/redis.sock, db=3"),
        ("redis://127.0.0.1:6379/2?db=5", None, "addr=127.0.0.1:6379, db=5"),
    ],
)
def test_describe_never_shows_credentials(url, db, expected):
    assert describe(url, db) == expected


SECRETS = ("s3cret", "app-user", "SENTPW", "DATAPW")


def no_secret_in(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def master_not_found(client: aioredis.Redis) -> MasterNotFoundError:
    """The error as redis-py's Sentinel.discover_master words it: each sentinel's repr, then its error's."""
    refused = redis.ConnectionError("Error 111 connecting to 127.0.0.1:26393. Connection refused.")
    return MasterNotFoundError(f"No master found for 'mymaster' : {client} - {refused!r}")


def test_redis_error_text_drops_the_passwords_of_client_reprs():
    client = aioredis.Redis(host="127.0.0.1", port=26393, username="app-user", password="s3cret")
    assert "password=s3cret" in repr(client)  # what redis-py puts in its errors
    assert redis_error_text(master_not_found(client)) == "no Redis Sentinel named a master for 'mymaster': Error 111 connecting to 127.0.0.1:26393. Connection refused."
    assert redis_error_text(MasterNotFoundError("No master found for 'mymaster'")) == "no Redis Sentinel named a master for 'mymaster'"
    for exc in (
        redis.ConnectionError(f"lost {client!r} and {client.connection_pool!r}"),
        redis.ConnectionError(f"lost {redis.Redis(username='app-user', password='s3cret')!r}"),
        redis.RedisError("bad options {'username': 'app-user', 'password': 's3cret'}"),
        redis.ConnectionError("cannot use redis://app-user:s3cret@127.0.0.1:6379/0"),
    ):
        text = redis_error_text(exc)
        assert no_secret_in(text), text
        assert "***" in text or "redis://127.0.0.1:6379/0" in text


def test_redis_error_text_drops_every_secret_of_the_configuration_wherever_it_is(make_config):
    cfg = make_config(A2A_QUEUE_URL="redis+sentinel://:SENTPW%2Cx@127.0.0.1:26393/mymaster/0", A2A_QUEUE_CREDENTIALS_PASSWORD="DATAPW,)>")
    client = aioredis.Redis(password="DATAPW,)>")  # a password the keyword pattern cannot see the end of
    for exc in (master_not_found(client), redis.ResponseError("odd reply mentioning SENTPW,x and DATAPW,)>")):
        assert no_secret_in(redis_error_text(exc, cfg))
    assert redis_error_text(redis.TimeoutError()) == "TimeoutError"


async def test_a_real_master_not_found_error_is_one_sentence_without_the_password(make_config, caplog):
    port = free_port()
    cfg = make_config(A2A_QUEUE_URL=f"redis+sentinel://:SENTPW@127.0.0.1:{port}/mymaster/0", A2A_QUEUE_CREDENTIALS_PASSWORD="DATAPW")
    client = make_async_client(cfg)
    with pytest.raises(MasterNotFoundError) as info:
        await client.ping()
    await client.aclose()
    assert "password=SENTPW" in str(info.value)  # redis-py's own text
    assert redis_error_text(info.value, cfg).startswith(f"no Redis Sentinel named a master for 'mymaster': Error 111 connecting to 127.0.0.1:{port}.")
    try:  # a Redis error that is no outage is logged with its traceback
        raise redis.ResponseError(f"odd reply on {aioredis.Redis(password='DATAPW')!r}")
    except redis.ResponseError as exc:
        odd = exc
    config_module.set_current(cfg)  # from_unexpected and /health use the process's configuration
    try:
        caplog.set_level(logging.INFO)
        answer = errors.from_unexpected(info.value, "SendMessage")
        unexpected = errors.from_unexpected(odd, "GetTask")
    finally:
        config_module.set_current(None)
    assert isinstance(answer, errors.StorageUnavailableError)
    assert answer.message.startswith("The task store (Redis) is unavailable (MasterNotFoundError: no Redis Sentinel named a master for 'mymaster': ")
    assert unexpected.message == "Internal error: ResponseError. The server log has the details."
    assert "Redis unavailable during SendMessage: MasterNotFoundError: no Redis Sentinel" in caplog.text
    assert "Unexpected error in GetTask\nTraceback (most recent call last)" in caplog.text and "odd reply on <redis.asyncio.client.Redis(" in caplog.text
    assert no_secret_in(answer.message) and no_secret_in(caplog.text)


async def test_health_gives_the_reason_without_the_password(monkeypatch):
    client = aioredis.Redis(username="app-user", password="s3cret")

    async def no_store():
        raise master_not_found(client)

    monkeypatch.setattr(views, "get_store", no_store)
    response = await views.health(RequestFactory().get("/health"))
    assert response.status_code == 503
    body = response.content.decode()
    assert "Redis unavailable: no Redis Sentinel named a master for 'mymaster'" in body and no_secret_in(body)


def test_the_channel_layer_uses_the_queue_connection_settings(make_config):
    # One place turns A2A_QUEUE_URL into clients: the Channels layer gets the same server and user.
    def host(**env) -> dict:
        layers = channel_layers(make_config(A2A_QUEUE_CREDENTIALS_USERNAME="app", A2A_QUEUE_CREDENTIALS_PASSWORD="pw", **env))
        assert layers["default"]["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
        return layers["default"]["CONFIG"]["hosts"][0]

    assert host(A2A_QUEUE_URL="redis://127.0.0.1:6390/2") == {"address": "redis://127.0.0.1:6390/2", "username": "app", "password": "pw"}
    cluster = host(A2A_QUEUE_URL="redis+cluster://127.0.0.1:7000,127.0.0.1:7001", A2A_QUEUE_KEY_PREFIX="{a2a}")
    assert cluster["address"] == "redis://127.0.0.1:7000/0"
    sentinel = host(A2A_QUEUE_URL="redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0")
    assert sentinel["sentinels"] == [("127.0.0.1", 26379), ("127.0.0.1", 26380)] and sentinel["master_name"] == "mymaster"
    embedded = host()
    assert embedded["address"].startswith("unix://") and embedded["address"].endswith("redis.sock") and embedded["client_name"].startswith("a2a:")
    memory = channel_layers(make_config(A2A_QUEUE_PROVIDER="memory"))
    assert memory["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"


async def test_evicting_policy_is_warned_about(make_config, caplog):
    server = RedisServer("--maxmemory-policy", "allkeys-lru").start()
    try:
        caplog.set_level(logging.INFO, "queueapp.connection")
        client = await connect(make_config(A2A_QUEUE_URL=server.url))
        await client.aclose()
        assert "Redis maxmemory-policy=allkeys-lru can evict keys: queued and running tasks may be lost" in caplog.text

        caplog.clear()
        client = await connect(make_config(A2A_QUEUE_URL=server.url, A2A_QUEUE_OPTIONS_MAXMEMORY_POLICY="noeviction"))
        await client.aclose()
        assert "Set Redis maxmemory-policy, policy=noeviction" in caplog.text and "can evict" not in caplog.text
        assert server.client().config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        server.stop()


async def test_policy_that_cannot_be_set_is_reported(make_config, caplog):
    server = RedisServer("--rename-command", "CONFIG", '""').start()
    try:
        caplog.set_level(logging.INFO, "queueapp.connection")
        client = await connect(make_config(A2A_QUEUE_URL=server.url, A2A_QUEUE_OPTIONS="maxmemory_policy:noeviction"))
        try:
            assert await check_eviction_policy(client, "noeviction") is None
        finally:
            await client.aclose()
        assert "Could not set Redis maxmemory-policy, policy=noeviction" in caplog.text
        assert "Could not read Redis maxmemory-policy (CONFIG may be disabled)" in caplog.text
    finally:
        server.stop()


def test_runworker_warns_about_an_evicting_redis(processes):
    server = RedisServer("--maxmemory-policy", "volatile-ttl").start()
    try:
        worker = processes.worker(server.url)
        wait_until(lambda: "Redis maxmemory-policy=volatile-ttl can evict keys" in worker.output, message="the eviction warning")
        assert worker.stop() == 0
    finally:
        server.stop()


def test_runworker_stopped_while_waiting_for_redis_exits_cleanly(processes):
    """SIGTERM while the worker still retries its first connection: exit 0 at once, not a kill."""
    worker = processes.worker(f"redis://127.0.0.1:{free_port()}/0", A2A_QUEUE_OPTIONS_MAX_RETRIES="50")
    wait_until(lambda: "Redis not reachable, retrying" in worker.output, message="the first retry")
    assert worker.stop(timeout=10) == 0
    assert "Worker stopped while starting" in worker.output


async def test_redis_lost_while_running_then_back(processes, own_redis, make_config):
    env = {"A2A_EMBEDDED_WORKERS": "0", "A2A_QUEUE_OPTIONS_TIMEOUT": "1s", "A2A_QUEUE_RECONNECT_BACKOFF_MAX": "500ms"}
    server = processes.serve(own_redis.url, **env)
    worker = processes.worker(own_redis.url, **env)

    def health() -> httpx.Response:
        return httpx.get(f"{server.url}/health", timeout=10)

    client = aioredis.Redis.from_url(own_redis.url, decode_responses=True)
    store = QueueStore(client)
    [before] = await submit(store, 1, "before the outage")
    await eventually(lambda: _is_finished(store, before), message="the first task")
    await client.aclose()

    own_redis.kill(signal.SIGKILL)
    down = await eventually(lambda: health().status_code == 503 and health(), timeout=20, message="/health to report 503")
    assert down.json()["status"] == "unhealthy" and "Redis" in down.json()["reason"]
    await eventually(lambda: "Redis unavailable while claiming" in worker.output, timeout=20, message="the worker to log the outage")

    own_redis.restart()
    await eventually(lambda: health().status_code == 200, timeout=30, message="/health to recover")
    assert health().json() == {"status": "healthy"}

    client = aioredis.Redis.from_url(own_redis.url, decode_responses=True)
    store = QueueStore(client)
    assert (await store.require(before)).state.value == "completed"  # kept across the restart (AOF)
    [after] = await submit(store, 1, "after the outage")
    await eventually(lambda: _is_finished(store, after), timeout=30, message="the worker to process again")
    await client.aclose()
    assert worker.stop() == 0


async def _is_finished(store, task_id: str) -> bool:
    record = await store.get(task_id)
    return record is not None and record.finished


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), True),
        (redis.TimeoutError("Timeout reading from socket"), True),
        (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), True),  # Redis 7
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), True),
        (redis.ResponseError("NOREPLICAS Not enough good replicas to write."), True),
        (redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), True),
        # A script's refused write on Redis 6, as redis-py gets it (seen on the embedded Redis 6.2).
        (redis.ResponseError("Error running script (call to f_8): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'."), True),
        (redis.ResponseError("Error running script (call to f_1): @user_script:1: user_script:1: =[C]: -1: -READONLY You can't write against a read only replica."), True),
        (redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
        (redis.ResponseError("ERR the OOM killer took it, says this agent"), False),
        (ConnectionRefusedError(111, "an agent's own HTTP call"), False),
        (TimeoutError(), False),  # an agent's time limit
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_redis_being_unavailable(error, outage):
    assert is_outage(error) is outage
    assert is_outage(error, os_errors=True) is (outage or isinstance(error, OSError))
