"""What every part of the store shares: the client, the key names, the scripts and the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from redis.asyncio.client import PubSub

from queueapp.ha import subscribe
from queueapp.model import Json
from queueapp.store.keys import Keys
from queueapp.store.scripts import Scripts

if TYPE_CHECKING:
    from queueapp.config import Config
    from queueapp.connection import RedisClient

EVENTS_MAXLEN = 1000
STATS_TTL_S = 2 * 3600
REPLICA_ACK_TIMEOUT_MS = 1000


class StoreBase:
    """The connection and the queue-wide operations on it (health, INFO, locks, notices)."""

    def __init__(
        self,
        redis: RedisClient,
        keys: Keys | None = None,
        *,
        idempotency_ttl: float = 86400,
        events_ttl: float = 600,
        replica_acks: int = 0,
        worker_lease: float = 30.0,
    ):
        self.redis = redis
        self.worker_lease = worker_lease  # a worker not heard from within it is dead
        self.replica_acks = replica_acks
        self.keys = keys or Keys()
        self.scripts = Scripts(redis)
        self.idempotency_ttl_ms = int(idempotency_ttl * 1000)
        self.events_ttl_ms = int(events_ttl * 1000)

    @classmethod
    def from_config(cls, redis: RedisClient, config: Config) -> Self:
        return cls(
            redis,
            Keys(config.queue_key_prefix),
            idempotency_ttl=config.idempotency_ttl,
            events_ttl=config.events_ttl,
            replica_acks=config.queue_replica_acks,
            worker_lease=config.worker_lease,
        )

    async def ping(self) -> None:
        """One round trip to Redis; raises when it does not answer."""
        await self.redis.ping()

    async def server_info(self) -> Json:
        """Redis's INFO ``server`` and ``memory`` sections, merged (refused by fakeredis and some ACLs)."""
        server = await self.redis.info("server")
        memory = await self.redis.info("memory")
        return {**server, **memory}

    async def subscribe_notices(self) -> PubSub:
        """A pub/sub subscribed to the notify channel (a shard channel on a Cluster, see ha.py)."""
        return await subscribe(self.redis, self.keys.notify)

    async def close(self) -> None:
        await self.redis.aclose()

    async def try_lock(self, name: str, seconds: float) -> bool:
        """Take the queue-wide lock ``name`` for ``seconds`` unless someone holds it; True if taken."""
        return bool(await self.redis.set(self.keys.lock(name), "1", nx=True, px=int(seconds * 1000)))
