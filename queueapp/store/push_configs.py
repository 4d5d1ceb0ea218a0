"""A task's push notification configs: one hash per task, one JSON value per config id."""

from __future__ import annotations

from queueapp import model
from queueapp.model import Json
from queueapp.store.base import StoreBase


class PushConfigs(StoreBase):
    async def set_push_config(self, task_id: str, config_id: str, config: Json) -> None:
        await self.redis.hset(self.keys.push_configs(task_id), config_id, model.dumps(config))

    async def get_push_configs(self, task_id: str) -> dict[str, Json]:
        raw = await self.scripts.pipeline.call("HGETALL", self.keys.push_configs(task_id))
        return {config_id: model.loads(value) for config_id, value in raw.items()}

    async def delete_push_config(self, task_id: str, config_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.push_configs(task_id), config_id))
