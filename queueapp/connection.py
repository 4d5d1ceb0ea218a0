"""Redis connections: a URL, the embedded server, memory (fakeredis), Sentinel or Cluster.

The data model is written once against the Redis API; only the connection differs.
There is no silent fallback: when a configured Redis cannot be reached, start-up
fails with :class:`RedisUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError
from redis.backoff import ExponentialWithJitterBackoff

from queueapp.config import EVICTING_POLICY_PREFIXES, Config, loaded
from queueapp.embedded import EmbeddedUnavailable, client_name, embedded_socket, ensure_embedded_server
from queueapp.ha import CLUSTER_SCHEMES, SENTINEL_SCHEMES, cluster_client, first_node_url, parse_sentinel_url, sentinel_client

log = logging.getLogger("queueapp.connection")


# An asyncio client: redis.asyncio.Redis, RedisCluster, or fakeredis's. Left untyped on
# purpose: redis-py gives each command one signature for its sync and asyncio clients
# ("a value or an awaitable"), so a typed client would check nothing and need a cast per call.
RedisClient = Any


class RedisUnavailable(RuntimeError):
    """Redis could not be reached (or could not be started, for the embedded one)."""


# Redis answering but refusing for a while: full (maxmemory with noeviction), a replica, a
# master short of the replicas it needs or whose last save failed, loading, a Cluster
# between masters. redis-py names some (the classes below); the others come as their code,
# at the start of the text, or, from a script on Redis 6, after it as '...: -OOM ...'.
_REFUSING = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)
_REFUSED_CODE = re.compile(r"(?:^|: -)(?:OOM|READONLY|NOREPLICAS|MISCONF|MASTERDOWN|LOADING|CLUSTERDOWN|TRYAGAIN) ")


def is_outage(exc: BaseException, *, os_errors: bool = False) -> bool:
    """Whether ``exc`` is Redis's way of saying it cannot serve this now (unreachable, or refusing writes).

    Such an error is waited out and retried, as an outage is, and answered as
    STORAGE_UNAVAILABLE: it is no bug of ours and no reason for a worker to stop. A bare
    OSError (a socket's, a timeout's) counts only with ``os_errors``, where nothing but our
    own Redis calls can have raised it: an agent raises those too.
    """
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, RedisUnavailable, *_REFUSING)):
        return True
    if os_errors and isinstance(exc, OSError):
        return True
    return isinstance(exc, redis.ResponseError) and _REFUSED_CODE.search(str(exc)) is not None


# ---- clients ---------------------------------------------------------------------------

_memory_server: Any = None


def memory_server() -> Any:
    """The process-wide fakeredis server behind the memory provider."""
    global _memory_server
    if _memory_server is None:
        import fakeredis

        _memory_server = fakeredis.FakeServer()
    return _memory_server


def resolved_url(config: Config) -> str:
    """The URL actually used: the configured one, or the embedded server's socket."""
    if config.storage_kind == "embedded":
        try:
            return ensure_embedded_server(config)
        except EmbeddedUnavailable as exc:
            raise RedisUnavailable(str(exc)) from None
    return config.queue_url


def _common_options(config: Config) -> dict[str, Any]:
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": config.queue_options_timeout,
        "socket_connect_timeout": config.queue_options_timeout,
        # A dropped connection is retried on a new one. A timeout is not: Redis is there but
        # not answering (frozen, swapping), and each retry would make the caller wait one
        # more timeout, so a client would hang for several times A2A_QUEUE_OPTIONS_TIMEOUT.
        "retry": Retry(ExponentialWithJitterBackoff(cap=config.queue_reconnect_backoff_max, base=0.05), config.queue_options_max_retries, (redis.ConnectionError,)),
        "retry_on_error": [redis.ConnectionError],
        "health_check_interval": 15,
        **_who(config),
    }
    if config.queue_options_db is not None:
        options["db"] = config.queue_options_db
    return options


def _who(config: Config) -> dict[str, Any]:
    """The Redis user, and the client name by which the embedded server counts its users."""
    options: dict[str, Any] = {}
    if config.queue_credentials_username:
        options["username"] = config.queue_credentials_username
    if config.queue_credentials_password:
        options["password"] = config.queue_credentials_password
    if config.storage_kind == "embedded":
        options["client_name"] = client_name()  # so that the last user can tell it is the last
    return options


def channel_layers(config: Config) -> dict[str, Any]:
    """Django's ``CHANNEL_LAYERS``: channels-redis on the queue's Redis, as the same user.

    Read at settings import, so it does not start the embedded server (its socket path is
    enough: the first client starts it). The layer only uses pub/sub, which reaches every
    node of a Cluster from any one, so it gets the first node of a cluster URL.
    """
    if config.storage_kind == "memory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    url = config.queue_url or f"unix://{embedded_socket(config)}"
    who = _who(config)
    if url.startswith(SENTINEL_SCHEMES):
        hosts, master, _db, sentinel_auth = parse_sentinel_url(url)
        host: dict[str, Any] = {"sentinels": hosts, "master_name": master, "sentinel_kwargs": sentinel_auth or None, **(who or sentinel_auth)}
    else:
        host = {"address": first_node_url(url) if url.startswith(CLUSTER_SCHEMES) else url, **who}
    return {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [host], "prefix": f"{config.queue_key_prefix}:channels"},
        }
    }


def make_async_client(config: Config, url: str | None = None) -> RedisClient:
    """A new asyncio Redis client for the configuration (not yet connected)."""
    if config.storage_kind == "memory":
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=memory_server(), decode_responses=True)
    url = url or resolved_url(config)
    options = _common_options(config)
    if url.startswith(SENTINEL_SCHEMES):
        return sentinel_client(url, options)
    if url.startswith(CLUSTER_SCHEMES):
        return cluster_client(url, options)
    client = aioredis.Redis.from_url(url, **options)
    if config.queue_options_db is not None:  # from_url lets the URL's /db win; the setting must
        client.connection_pool.connection_kwargs["db"] = config.queue_options_db
    return client


def describe(url: str, db: int | None) -> str:
    """``addr=HOST:PORT, db=N`` for logs, without credentials."""
    parsed = urlparse(url)
    addr = parsed.path if parsed.scheme == "unix" else parsed.netloc.rpartition("@")[2]
    if db is None:  # as redis-py reads it: ?db= first, then the path's
        path_db = parse_qs(parsed.query).get("db", [parsed.path.strip("/") if parsed.scheme in ("redis", "rediss") else ""])[0]
        db = int(path_db) if path_db.isdigit() else 0
    return f"addr={addr}, db={db}"


# What redis-py puts in its errors that must not be shown: the connection keywords in the repr
# of a pool or client (``password=...,username=...``, MasterNotFoundError quotes one per
# sentinel), the same in a dict's repr, and the user and password of a URL.
_KEYWORD_SECRET = re.compile(r"\b((?:ssl_)?password|username)=.*?(?=,\s*\w+=|\)|>|\s|$)")
_DICT_SECRET = re.compile(r"""(['"](?:(?:ssl_)?password|username)['"]\s*:\s*)(['"]).*?\2""")
_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][\w+.-]*://)[^\s/?#]*@")
_NO_MASTER = re.compile(r"No master found for ('[^']*'|\"[^\"]*\")")
_SENTINEL_ERROR = re.compile(r""" - \w+\((['"])(.*?)\1\)(?=, <|$)""")
_SHORTEST_HIDDEN = 4  # shorter secrets are hidden where they are named, but not wherever the letters occur


def redis_error_text(exc: BaseException, config: Config | None = None, *, with_traceback: bool = False) -> str:
    """A Redis error as text safe to show a client or write to a log: no password, no user name.

    redis-py's errors may quote the repr of a client or pool, which lists every connection
    keyword, the password too. Those keywords and a URL's ``user:pass@`` are dropped, and so is
    every secret of ``config`` (the process's loaded one when not given) wherever it occurs:
    A2A_QUEUE_CREDENTIALS_* and the user and password of A2A_QUEUE_URL, the sentinels' among
    them. A MasterNotFoundError becomes one sentence naming the service and why each sentinel
    failed. ``with_traceback`` adds the traceback, cleaned the same way.
    """
    text = str(exc)
    if isinstance(exc, MasterNotFoundError | redis.sentinel.MasterNotFoundError) and (found := _NO_MASTER.match(text)):
        reasons = list(dict.fromkeys(reason for _, reason in _SENTINEL_ERROR.findall(text)))
        text = f"no Redis Sentinel named a master for {found.group(1)}" + (f": {'; '.join(reasons)}" if reasons else "")
    text = text or exc.__class__.__name__
    if with_traceback and exc.__traceback__ is not None:
        text = "".join(traceback.format_exception(exc)).rstrip()
    return _without_secrets(text, config or loaded())


def _without_secrets(text: str, config: Config | None) -> str:
    text = _KEYWORD_SECRET.sub(r"\1=***", text)
    text = _DICT_SECRET.sub(r"\1\2***\2", text)
    text = _URL_CREDENTIALS.sub(r"\1", text)
    for secret in sorted(_secrets(config), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), repr(secret)[1:-1]}:
            text = text.replace(form, "***")
    return text


def _secrets(config: Config | None) -> set[str]:
    """The user names and passwords of the configuration that are long enough to look for anywhere."""
    if config is None:
        return set()
    found = {config.queue_credentials_username, config.queue_credentials_password}
    if config.queue_url:
        netloc = config.queue_url.partition("://")[2].split("/", 1)[0]
        if "@" in netloc:
            user, _, password = netloc.rpartition("@")[0].partition(":")
            found.update((user, password, unquote(user), unquote(password)))
        query = config.queue_url.partition("?")[2]
        found.update(unquote(value) for name, _, value in (item.partition("=") for item in query.split("&")) if name in ("username", "password"))
    return {secret for secret in found if len(secret) >= _SHORTEST_HIDDEN}


async def connect(config: Config, *, check_policy: bool = True) -> RedisClient:
    """Connect and ping, retrying as configured; raise :class:`RedisUnavailable` if it never answers."""
    if config.storage_kind == "memory":
        log.warning("Using in-memory storage (fakeredis): nothing persists, and only this process sees the queue")
        return make_async_client(config)
    url = resolved_url(config)
    client = make_async_client(config, url)
    attempts = config.queue_options_max_retries + 1
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            await client.ping()
            break
        except (redis.RedisError, OSError) as exc:
            last_error = exc
            if attempt + 1 < attempts:
                delay = min(0.2 * 2**attempt, config.queue_reconnect_backoff_max)
                log.warning("Redis not reachable, retrying in %.1fs, %s, error=%s", delay, describe(url, config.queue_options_db), redis_error_text(exc, config))
                await asyncio.sleep(delay)
    else:
        await client.aclose()
        reason = redis_error_text(last_error, config) if last_error else "no answer"
        raise RedisUnavailable(f"cannot reach Redis at {describe(url, config.queue_options_db)}: {reason}")
    log.info("Connected to Redis, %s", describe(url, config.queue_options_db))
    await check_key_access(client, config.queue_key_prefix)
    if check_policy:
        await check_eviction_policy(client, config.queue_options_maxmemory_policy)
    if config.queue_replica_acks:
        await check_replicas(client, config.queue_replica_acks)
    return client


async def check_replicas(client: RedisClient, wanted: int) -> int | None:
    """Warn when fewer replicas are connected than A2A_QUEUE_REPLICA_ACKS asks to confirm each create."""
    try:
        connected = int((await client.info("replication")).get("connected_slaves", 0))
    except redis.RedisError as exc:
        log.warning("Could not read Redis's replicas (INFO may be refused to this user), error=%s", redis_error_text(exc))
        return None
    if connected < wanted:
        log.warning(
            "A2A_QUEUE_REPLICA_ACKS=%s but Redis has %s connected replicas: every SendMessage that creates a task waits for them and is answered -32603 until enough connect",
            wanted,
            connected,
        )
    return connected


async def check_key_access(client: RedisClient, prefix: str) -> None:
    """Fail at start-up, not on the first request, when the Redis user may not use the prefix's keys."""
    try:
        await client.exists(f"{prefix}:queue")
    except redis.exceptions.NoPermissionError as exc:
        await client.aclose()
        raise RedisUnavailable(f"the Redis user may not use the keys under {prefix}: grant it ~{prefix}:* and &{prefix}:* ({redis_error_text(exc)})") from None


async def check_eviction_policy(client: RedisClient, wanted: str) -> str | None:
    """Warn when Redis may evict queue keys; set the wanted policy if one was configured."""
    try:
        if wanted:
            try:
                await client.config_set("maxmemory-policy", wanted)
                log.info("Set Redis maxmemory-policy, policy=%s", wanted)
            except redis.RedisError as exc:
                log.warning("Could not set Redis maxmemory-policy, policy=%s, error=%s", wanted, redis_error_text(exc))
        policy: str | None = (await client.config_get("maxmemory-policy")).get("maxmemory-policy")
    except redis.RedisError as exc:
        log.warning("Could not read Redis maxmemory-policy (CONFIG may be disabled), error=%s", redis_error_text(exc))
        return None
    if policy and policy.startswith(EVICTING_POLICY_PREFIXES):
        log.warning(
            "Redis maxmemory-policy=%s can evict keys: queued and running tasks may be lost when memory is full. Use noeviction.",
            policy,
        )
    return policy
