"""The automatic pipeline under the store's script calls (queueapp.store.pipelining)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from queueapp.store.pipelining import AutoPipeline, PipelinedScript


class CountingRedis:
    """A real client that counts how many times it was asked for a pipeline."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self.pipelines = 0

    def pipeline(self, **kwargs):
        self.pipelines += 1
        return self.client.pipeline(**kwargs)

    def execute_command(self, *args, **kwargs):
        return self.client.execute_command(*args, **kwargs)


@pytest.fixture
async def client(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_calls_made_together_share_one_round_trip_and_each_gets_its_own_reply(client):
    counting = CountingRedis(client)
    auto = AutoPipeline(counting)
    await client.set("k", "v")

    replies = await asyncio.gather(*(auto.call("INCR", f"n{i}") for i in range(50)), auto.call("GET", "k"), auto.call("HGETALL", "missing"))

    assert replies == [1] * 50 + ["v", {}]
    assert counting.pipelines == 1


async def test_an_error_reply_reaches_only_the_caller_that_caused_it(client):
    auto = AutoPipeline(client)
    await client.set("text", "not a number")

    good, bad, later = await asyncio.gather(auto.call("INCR", "n"), auto.call("INCR", "text"), auto.call("INCR", "n"), return_exceptions=True)

    assert good == 1 and later == 2
    assert isinstance(bad, ResponseError)


async def test_a_lone_call_and_a_lone_error_behave_like_a_plain_command(client):
    auto = AutoPipeline(client)
    await client.set("text", "x")
    assert await auto.call("GET", "text") == "x"
    with pytest.raises(ResponseError):
        await auto.call("INCR", "text")


async def test_a_script_the_server_has_never_seen_is_loaded_and_run(client):
    await client.script_flush()
    script = PipelinedScript(AutoPipeline(client), "return {KEYS[1], ARGV[1]}")

    assert await script(keys=["a"], args=["b"]) == ["a", "b"]
    assert await client.script_exists(script.sha) == [True]  # the next call finds it by SHA
    assert await script(keys=["c"], args=[1]) == ["c", "1"]


async def test_a_cancelled_caller_does_not_disturb_the_others(client):
    auto = AutoPipeline(client)
    first = asyncio.ensure_future(auto.call("INCR", "n"))
    second = asyncio.ensure_future(auto.call("INCR", "n"))
    await asyncio.sleep(0)
    first.cancel()

    assert await second == 2  # the cancelled call was still sent; only its reply was dropped
    assert await client.get("n") == "2"


async def test_a_lost_connection_fails_every_waiting_call_and_the_next_calls_work(redis_url):
    broken = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    auto = AutoPipeline(broken)
    results = await asyncio.gather(auto.call("PING"), auto.call("PING"), return_exceptions=True)
    assert all(isinstance(r, (RedisConnectionError, OSError)) for r in results)
    await broken.aclose()

    healthy = aioredis.Redis.from_url(redis_url)
    try:
        assert await AutoPipeline(healthy).call("PING") is True
    finally:
        await healthy.aclose()


async def test_commands_with_non_ascii_text_and_numbers_round_trip(client):
    auto = AutoPipeline(client)
    await auto.call("HSET", "h", "name", "Zoë ✓", "n", 12, "f", 1.5)
    assert await client.hgetall("h") == {"name": "Zoë ✓", "n": "12", "f": "1.5"}


async def test_a_value_redis_cannot_take_is_refused_before_anything_is_sent(client):
    from redis.exceptions import DataError

    with pytest.raises(DataError):
        await client.set("k", {"not": "encodable"})
    assert await client.exists("k") == 0


def test_the_fast_packer_is_installed_by_start_up_not_by_an_import():
    """Importing the store leaves redis-py (and so the Channels layer) as it is; start-up
    (queueapp.startup.open_store) installs hiredis's packer explicitly."""
    script = (
        "from redis.asyncio.connection import AbstractConnection\n"
        "original = AbstractConnection.pack_command\n"
        "import queueapp.store, queueapp.services, queueapp.startup\n"
        "assert AbstractConnection.pack_command is original\n"
        "from queueapp.store.pipelining import install_fast_packer\n"
        "assert install_fast_packer() and AbstractConnection.pack_command is not original\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
