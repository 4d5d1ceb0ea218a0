"""Highly available Redis deployments: Sentinel, Cluster, and the sharded notify channel.

:mod:`queueapp.connection` hands ``redis+sentinel://`` and ``redis+cluster://`` URLs (and
their ``rediss+`` TLS forms) to this module. Both take a comma-separated host list and the
usual query arguments of redis-py URLs (``ssl_ca_certs``, ``ssl_certfile``, ...).

The notify channel of a hash-tag prefix (``{a2a}:queue:notify``) is a *shard channel*: the
Lua scripts SPUBLISH to it, so a Cluster delivers notices inside the one shard that holds the
queue instead of broadcasting them to every node, and subscribers SSUBSCRIBE on that shard.
Redis before 7 has no sharded pub/sub; both sides then fall back to plain PUBLISH/SUBSCRIBE.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlparse

import redis
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.utils import str_if_bytes

from queueapp.config import redact_url

if TYPE_CHECKING:
    from queueapp.connection import RedisClient

log = logging.getLogger("queueapp.connection")

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
# Connection options a Sentinel's own connections do not take from the data connections.
_DATA_ONLY_OPTIONS = ("retry", "retry_on_error", "health_check_interval", "db", "username", "password")


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for item in filter(None, netloc.rpartition("@")[2].split(",")):
        host, sep, port = item.rpartition(":")
        if not sep or host.endswith(":"):  # no port given (or a bare IPv6 address)
            host, port = item, ""
        if not host.strip("[]") or host.startswith("[") != host.endswith("]") or not (port or "0").isdigit():
            raise ValueError(f"{item!r} is not host:port")
        if port and not 0 < int(port) < 65536:
            raise ValueError(f"the port of {item!r} is not a number from 1 to 65535")
        hosts.append((host.strip("[]"), int(port or default_port)))
    if not hosts:
        raise ValueError("the URL names no host")
    return hosts


def _userinfo(netloc: str) -> dict[str, str]:
    if "@" not in netloc:
        return {}
    user, _, password = netloc.rpartition("@")[0].partition(":")
    return {k: v for k, v in (("username", unquote(user)), ("password", unquote(password))) if v}


def _flag(text: str) -> bool:
    """A yes/no query value, read the way redis-py reads it (which takes anything but 0, f, false, n, no as yes)."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(text)


def _seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise ValueError(text)
        return value

    return parse


def _cert_reqs(text: str) -> str:
    if text not in ("none", "optional", "required"):
        raise ValueError(text)
    return text


class QueryOption(NamedTuple):
    parse: Callable[[str], Any]
    accepts: str
    forms: str  # "any", "tls" (rediss only), "single" (one server: redis, rediss, unix), "not cluster"


# The query arguments of A2A_QUEUE_URL: what redis-py takes from a URL and can use as given. Any
# other name would reach redis-py's connection class as a keyword it does not know.
QUERY_OPTIONS = {
    "db": QueryOption(_whole(0), "a database number", "single"),
    "socket_timeout": QueryOption(_seconds, "a number of seconds above 0", "any"),
    "socket_connect_timeout": QueryOption(_seconds, "a number of seconds above 0", "any"),
    "socket_keepalive": QueryOption(_flag, "true or false", "any"),
    "retry_on_timeout": QueryOption(_flag, "true or false", "not cluster"),
    "health_check_interval": QueryOption(_whole(0), "a whole number of seconds", "any"),
    "max_connections": QueryOption(_whole(1), "a whole number, 1 or more", "any"),
    "client_name": QueryOption(str, "a name", "any"),
    "username": QueryOption(str, "a user name", "any"),
    "password": QueryOption(str, "a password", "any"),
    "ssl_ca_certs": QueryOption(str, "a file path", "tls"),
    "ssl_ca_data": QueryOption(str, "PEM text", "tls"),
    "ssl_certfile": QueryOption(str, "a file path", "tls"),
    "ssl_keyfile": QueryOption(str, "a file path", "tls"),
    "ssl_cert_reqs": QueryOption(_cert_reqs, "none, optional or required", "tls"),
    "ssl_check_hostname": QueryOption(_flag, "true or false", "tls"),
    "ssl_ciphers": QueryOption(str, "an OpenSSL cipher list", "tls"),
}
_SECRET_OPTIONS = ("username", "password")


def _takes(scheme: str, option: QueryOption) -> bool:
    if option.forms == "tls":
        return scheme.startswith("rediss")
    if option.forms == "single":
        return "+" not in scheme
    if option.forms == "not cluster":
        return not scheme.endswith("+cluster")
    return True


def _query(query: str, scheme: str) -> dict[str, Any]:
    """The URL's query arguments (``ssl_ca_certs=/path``...) as redis-py's keywords; ValueError for one it cannot take."""
    options: dict[str, Any] = {}
    seen: set[str] = set()
    for name, text in parse_qsl(query, keep_blank_values=True):
        option = QUERY_OPTIONS.get(name)
        if option is None or not _takes(scheme, option):
            if option is not None and option.forms == "tls":
                instead = f": use rediss{scheme.removeprefix('redis')}:// instead of {scheme}://" if scheme.startswith("redis") else f", and a {scheme}:// URL has no TLS"
                raise ValueError(f"the query option {name} is for TLS{instead}")
            accepted = ", ".join(n for n, o in QUERY_OPTIONS.items() if _takes(scheme, o))
            raise ValueError(f"a {scheme}:// URL takes no query option {name!r}: expected {accepted}")
        if name in seen:
            raise ValueError(f"the query option {name} is given twice")
        seen.add(name)
        if not text:  # as redis-py does: an empty value is no value
            continue
        try:
            options[name] = option.parse(text)
        except ValueError:
            shown = "" if name in _SECRET_OPTIONS else f"={text!r}"
            raise ValueError(f"the query option {name}{shown} is not {option.accepts}") from None
    return options


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower()


def parse_single_url(url: str) -> None:
    """Check a ``redis://``, ``rediss://`` or ``unix://`` URL as redis-py will read it; ValueError says what is wrong.

    redis-py quietly reads a missing host as localhost, a path that is no number as database 0
    and a port of 0 as 6379, and refuses other mistakes only on the first connection.
    """
    parsed = urlparse(url)
    address = parsed.netloc.rpartition("@")[2]
    if parsed.scheme == "unix":
        if address:
            raise ValueError(f"a unix:// URL names a socket path, not a host ({address!r}): expected unix:///path/to/redis.sock")
        if not parsed.path:
            raise ValueError("the URL names no socket path: expected unix:///path/to/redis.sock")
        return
    if not parsed.hostname:
        raise ValueError("the URL names no host")
    try:
        port = parsed.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0:
        raise ValueError(f"the port {address.rpartition(']')[2].rpartition(':')[2]!r} is not a number from 1 to 65535")
    db = parsed.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"the database after the host must be a number, not {db!r}")


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int | None, dict[str, Any]]:
    """``redis+sentinel://[user:pass@]h1:26379,h2:26379/mastername/db`` -> (hosts, master, db, auth)."""
    parsed = urlparse(url)
    path = [p for p in parsed.path.split("/") if p]
    if not path:
        raise ValueError("a Sentinel URL needs the master name: redis+sentinel://host:26379/mymaster/0")
    if len(path) > 1 and not path[1].isdigit():
        raise ValueError(f"the database after the master name must be a number, not {path[1]!r}")
    if len(path) > 2:
        raise ValueError("expected /mastername or /mastername/db after the hosts")
    return _hosts(parsed.netloc, 26379), path[0], int(path[1]) if len(path) > 1 else None, _userinfo(parsed.netloc)


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """``redis+cluster://[user:pass@]h1:7000,h2:7001`` -> (startup nodes, auth)."""
    parsed = urlparse(url)
    if parsed.path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    return _hosts(parsed.netloc, 6379), _userinfo(parsed.netloc)


def first_node_url(url: str) -> str:
    """A plain ``redis://`` URL of a cluster URL's first node, for clients that take one server."""
    host, port = parse_cluster_url(url)[0][0]
    parsed = urlparse(url)
    userinfo = parsed.netloc.rpartition("@")[0] + "@" if "@" in parsed.netloc else ""
    scheme = "rediss" if url.startswith("rediss") else "redis"
    return f"{scheme}://{userinfo}{host}:{port}/0" + (f"?{parsed.query}" if parsed.query else "")


def url_problem(url: str, prefix: str, db: int | None, replica_acks: int, accepts: str) -> str | None:
    """What makes A2A_QUEUE_URL (with the prefix and db) unusable, worded as a config error; None if nothing."""
    if not url:
        return f"A2A_QUEUE_REPLICA_ACKS={replica_acks} needs A2A_QUEUE_URL: the embedded Redis has no replicas" if replica_acks else None
    shown = redact_url(url)  # never the password
    if not url.startswith(("redis://", "rediss://", "unix://", *SENTINEL_SCHEMES, *CLUSTER_SCHEMES)):
        return f"A2A_QUEUE_URL={shown!r} is invalid: expected {accepts}"
    try:
        query = urlparse(url).query
    except ValueError:  # an unclosed bracket; Python's own text may quote the password
        return f"A2A_QUEUE_URL={shown!r} is invalid: the host is not valid (an IPv6 address goes in brackets: [::1]:6379)"
    try:
        if url.startswith(SENTINEL_SCHEMES):
            parse_sentinel_url(url)
        elif url.startswith(CLUSTER_SCHEMES):
            parse_cluster_url(url)
        else:
            parse_single_url(url)
        _query(query, _scheme(url))
    except ValueError as exc:
        return f"A2A_QUEUE_URL={shown!r} is invalid: {exc}"
    if url.startswith(CLUSTER_SCHEMES):
        if not is_hash_tag(prefix):
            return (
                f"A2A_QUEUE_KEY_PREFIX={prefix!r} is invalid for a Redis Cluster: expected a hash tag such as {{a2a}}, "
                "so that every key and script of the queue stays in one slot"
            )
        if db:
            return f"A2A_QUEUE_OPTIONS_DB={db} is invalid for a Redis Cluster: a cluster has only database 0"
        if replica_acks:
            return f"A2A_QUEUE_REPLICA_ACKS={replica_acks} is not supported on a Redis Cluster: use 0 (Cluster routes WAIT away from the write)"
    return None


def is_hash_tag(prefix: str) -> bool:
    """``{a2a}`` or ``{a2a}:tenant``: the part Cluster hashes is fixed by the prefix."""
    return prefix.startswith("{") and prefix.find("}") > 1


# ---- Sentinel --------------------------------------------------------------------------------


_NOT_MASTER_ERRORS = ("UNBLOCKED", "NOREPLICAS")
MASTER_CHECK_INTERVAL_S = 1.0


class FailoverAwareConnection(SentinelManagedConnection):
    """Asks the sentinels for the master on *every* (re)connect.

    redis-py's async Sentinel connection resolves the master only in ``connect()``; the retry
    inside a command reconnects through ``connect_check_health()`` to the address it had,
    so after a failover each command's retries go to the old master (redis-py issue 3874).
    Errors that mean "this is no longer the master to write to" become connection errors,
    so the command is retried on whatever master the sentinels name now: READONLY (redis-py
    does that already), UNBLOCKED (a BLMOVE cut short by a role change) and NOREPLICAS (an old
    master with ``min-replicas-to-write`` refusing writes once its replica was promoted).
    """

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            if self.connection_pool.is_master and str(exc).startswith(_NOT_MASTER_ERRORS):
                await self.disconnect()
                raise redis.ConnectionError(f"the master changed role: {exc}") from exc
            raise


class FailoverAwareSSLConnection(FailoverAwareConnection, SSLConnection):
    pass


class FailoverAwarePool(SentinelConnectionPool):
    """Asks the sentinels who the master is at most once a second, on checkout.

    After a failover the old master stays a master until Sentinel reconfigures it (about ten
    seconds later); a connection that never breaks would keep reading from it. A connection
    to anything but the current master is reconnected before it is handed out.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._checked_at = 0.0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_master and time.monotonic() - self._checked_at > MASTER_CHECK_INTERVAL_S:
            self._checked_at, previous = time.monotonic(), self.master_address
            with contextlib.suppress(redis.ConnectionError):  # no master right now: the command will say so
                address = await self.get_master_address()
                if previous and tuple(address) != tuple(previous):
                    log.warning("Redis master changed, following it, addr=%s:%s, previous=%s:%s", *address, *previous)
        connection = await super().get_connection(*args, **kwargs)
        if self.is_master and self.master_address and (connection.host, connection.port) != tuple(self.master_address):
            await connection.disconnect()
            await connection.connect()
        return connection


def sentinel_client(url: str, options: dict[str, Any]) -> aioredis.Redis:
    """A client of the master that a group of sentinels names, following every failover.

    Credentials in the URL are the sentinels'; A2A_QUEUE_CREDENTIALS_* (in ``options``) are
    the data nodes'. When only the URL has them, both use them.
    """
    hosts, master, db, auth = parse_sentinel_url(url)
    tls = url.startswith("rediss")
    query = _query(urlparse(url).query, _scheme(url))
    data_options = {**auth, **options, **query}
    if db is not None and "db" not in options:
        data_options["db"] = db
    sentinel_options = {k: v for k, v in options.items() if k not in _DATA_ONLY_OPTIONS}
    sentinel_options.update(auth)
    if tls:
        sentinel_options.update(ssl=True, **query)
    connection_class = FailoverAwareSSLConnection if tls else FailoverAwareConnection
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_options)
    client: aioredis.Redis = sentinel.master_for(master, connection_pool_class=FailoverAwarePool, connection_class=connection_class, **data_options)
    return client


# ---- Cluster ---------------------------------------------------------------------------------


def cluster_client(url: str, options: dict[str, Any]) -> RedisCluster:
    """A Redis Cluster client from ``redis+cluster://host:port,host:port``."""
    hosts, auth = parse_cluster_url(url)
    cluster_options = {**auth, **{k: v for k, v in options.items() if k != "db"}, **_query(urlparse(url).query, _scheme(url))}
    if url.startswith("rediss"):
        cluster_options["ssl"] = True
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in hosts], **cluster_options)


# ---- the notify channel ----------------------------------------------------------------------


def is_shard_channel(channel: str) -> bool:
    return is_hash_tag(channel)


class ShardedPubSub(PubSub):
    """SSUBSCRIBE for the asyncio client (redis-py 6 only has it in the sync cluster client).

    Re-subscribes after a reconnect. When the channel's slot moves to another node, Redis
    sends an unasked SUNSUBSCRIBE: that is raised as a ConnectionError, so the listener
    subscribes again where the slot now lives.
    """

    # redis-py declares both as pairs; the sharded kinds make them three.
    PUBLISH_MESSAGE_TYPES = ("message", "pmessage", "smessage")  # type: ignore[assignment]
    UNSUBSCRIBE_MESSAGE_TYPES = ("unsubscribe", "punsubscribe", "sunsubscribe")  # type: ignore[assignment]

    def __init__(self, connection_pool: Any, *, owner: Any = None, **kwargs: Any):
        super().__init__(connection_pool, **kwargs)
        self.shard_channels: set[str] = set()
        self._owner = owner  # a client made only for this subscription, closed with it

    @property
    def subscribed(self) -> bool:
        return bool(self.shard_channels) or super().subscribed

    async def ssubscribe(self, *channels: str) -> None:
        self.shard_channels.update(channels)
        await self.execute_command("SSUBSCRIBE", *channels)

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        if self.shard_channels:
            await self.execute_command("SSUBSCRIBE", *self.shard_channels)

    async def handle_message(self, response: Any, ignore_subscribe_messages: bool = False) -> Any:
        if isinstance(response, list) and str_if_bytes(response[0]) == "sunsubscribe":
            raise redis.ConnectionError(f"shard channel {str_if_bytes(response[1])} moved to another node")
        return await super().handle_message(response, ignore_subscribe_messages)

    async def aclose(self) -> None:
        await super().aclose()
        if self._owner is not None:
            await self._owner.aclose()


async def _supports_sharded_pubsub(client: RedisClient, channel: str) -> bool:
    """Redis 7 (and fakeredis) know PUBSUB SHARDNUMSUB; Redis 6 answers an error."""
    try:
        await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    except redis.ResponseError:
        return False
    return True


async def subscribe(client: RedisClient, channel: str) -> PubSub:
    """A pub/sub connection subscribed to ``channel``, sharded where the channel is a shard channel."""
    if isinstance(client, RedisCluster):
        await client.nodes_manager.initialize()  # ask where the slot is now, not where it was
        node = client.get_node_from_key(channel)
        if node is None:  # no node serves the slot (yet): the listener retries as for a lost connection
            raise redis.ConnectionError(f"no cluster node serves the slot of {channel}")
        node_client = aioredis.Redis.from_pool(aioredis.ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs))
        pubsub = ShardedPubSub(node_client.connection_pool, owner=node_client, ignore_subscribe_messages=True)
        await pubsub.ssubscribe(channel)
        return pubsub
    if is_shard_channel(channel) and await _supports_sharded_pubsub(client, channel):
        pubsub = ShardedPubSub(client.connection_pool, ignore_subscribe_messages=True)
        await pubsub.ssubscribe(channel)
        return pubsub
    plain: PubSub = client.pubsub(ignore_subscribe_messages=True)
    await plain.subscribe(channel)
    return plain


async def publish(client: RedisClient, channel: str, message: str) -> None:
    """Publish a notice the way the Lua scripts do (see ``lua/_common.lua``)."""
    if is_shard_channel(channel):
        try:
            await client.execute_command("SPUBLISH", channel, message)
            return
        except redis.ResponseError as exc:
            if "unknown command" not in str(exc).lower():
                raise
    await client.publish(channel, message)
