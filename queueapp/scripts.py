"""The Lua scripts, one file per transition under ``lua/``, each registered once.

Every script names every key it touches in KEYS (see each file's header), so the
same scripts run on Redis Cluster when the key prefix is a hash tag.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from queueapp.pipelining import AutoPipeline, PipelinedScript
from queueapp.states import lua_constants

LUA_DIR = Path(__file__).resolve().parent / "lua"
SCRIPT_NAMES = ("create", "take", "lease", "update", "finish", "retry", "delete", "heartbeat", "recover", "pause")


@cache
def source(name: str) -> str:
    """The script's text with the state constants and the shared helpers in front of it."""
    return lua_constants() + (LUA_DIR / "_common.lua").read_text() + "\n" + (LUA_DIR / f"{name}.lua").read_text()


class Scripts:
    """The scripts of one Redis client, as attributes: ``scripts.create(keys, args)``.

    Calls go through one :class:`AutoPipeline`, so the calls of many running tasks share round trips.
    """

    def __init__(self, client: Any):
        self.pipeline = AutoPipeline(client)
        for name in SCRIPT_NAMES:
            setattr(self, name, PipelinedScript(self.pipeline, source(name)))
