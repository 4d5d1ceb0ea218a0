"""A task's push notification configs: one hash per task, one JSON value per config id."""

from __future__ import annotations

from queueapp import model
from queueapp.model import Json
from queueapp.store.base import StoreBase
from queueapp.store.scripts import SetPushConfigArgs

OWNER_FIELD = "owner"
"""The field of a stored push config naming its owner (auth on); never sent to clients."""


class PushConfigs(StoreBase):
    async def set_push_config(self, task_id: str, config_id: str, config: Json, owner: str | None = None) -> bool:
        """Store a config, owned by ``owner``; False, storing nothing, when the id is another owner's config."""
        stored = {**config, OWNER_FIELD: owner} if owner else config
        args: SetPushConfigArgs = {"config_id": config_id, "config_json": model.dumps(stored), "owner_field": OWNER_FIELD, "owner": owner or ""}
        return bool(await self.scripts.set_push_config({"push_configs": self.keys.push_configs(task_id)}, args))

    async def get_push_configs(self, task_id: str) -> dict[str, Json]:
        raw = await self.scripts.pipeline.call("HGETALL", self.keys.push_configs(task_id))
        return {config_id: model.loads(value) for config_id, value in raw.items()}

    async def delete_push_config(self, task_id: str, config_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.push_configs(task_id), config_id))
