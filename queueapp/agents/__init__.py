"""Built-in agents, and loading the configured one."""

from __future__ import annotations

import importlib

from queueapp.agents.base import Agent, RunContext, TaskUpdater
from queueapp.config import Config

BUILTIN = {
    "echo": "queueapp.agents.echo.EchoAgent",
    "noop": "queueapp.agents.echo.NoopAgent",
    "demo": "queueapp.agents.demo.DemoAgent",
    "conformance": "queueapp.agents.conformance.ConformanceAgent",
    "llm": "queueapp.agents.llm.LLMAgent",
}


class AgentLoadError(ValueError):
    pass


def load_agent(name: str, config: Config | None = None) -> Agent:
    """Instantiate a built-in agent by name, or a user's agent by dotted path."""
    path = BUILTIN.get(name, name)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise AgentLoadError(f"A2A_AGENT={name!r} is invalid: expected one of {', '.join(BUILTIN)} or a dotted path to an Agent class")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise AgentLoadError(f"A2A_AGENT={name!r} is invalid: cannot import {path} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise AgentLoadError(f"A2A_AGENT={name!r} is invalid: {path} is not a subclass of queueapp.agents.Agent")
    return cls(config)


__all__ = ["Agent", "AgentLoadError", "RunContext", "TaskUpdater", "load_agent"]
