"""Who may touch what: every task, context and push config belongs to the identity that created it.

The owner is stored with the thing itself (``store.create_task`` sets it in the same Lua step
that creates the task and, for a new context, the context). A caller sees its own things;
the identities in ``A2A_AUTH_ADMIN_IDENTITIES`` see and act on everything; with auth off there
is one anonymous caller, who sees everything as before. Anything a caller may not see is
answered exactly like something that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from queueapp.config import Config
from queueapp.model import Json
from queueapp.store.push_configs import OWNER_FIELD


@dataclass(frozen=True)
class Access:
    admins: frozenset[str]

    @classmethod
    def from_config(cls, config: Config) -> Access:
        return cls(frozenset(config.auth_admin_identities))

    def sees_all(self, identity: str | None) -> bool:
        """Auth off (no identity), or an admin."""
        return identity is None or identity in self.admins

    def scope(self, identity: str | None) -> str | None:
        """The owner whose tasks a list holds; None for every task."""
        return None if self.sees_all(identity) else identity

    def may_see(self, identity: str | None, owner: str | None) -> bool:
        return self.sees_all(identity) or owner == identity

    def visible_configs(self, identity: str | None, configs: dict[str, Json]) -> dict[str, Json]:
        """The caller's push configs (all of them for auth off and admins), as clients see them."""
        return {
            config_id: public_config(config) for config_id, config in configs.items() if self.may_see(identity, config.get(OWNER_FIELD))
        }


def public_config(config: Json) -> Json:
    return {key: value for key, value in config.items() if key != OWNER_FIELD}
