"""The agent card: what this server says about itself at /.well-known/agent-card.json.

It is a 1.0 card listing a JSON-RPC and an HTTP+JSON interface for each of 1.0 and 0.3,
and a 1.0 gRPC interface when the gRPC server is on, with the 0.3 fields merged in by the SDK's own ``agent_card_to_dict`` so that 0.3
clients read it too. It is cached by clients (``Cache-Control`` + ``ETag``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import ParseDict

from queueapp import model
from queueapp.agents import load_agent
from queueapp.auth import API_KEY_HEADER, authenticator
from queueapp.model import Json

JSONRPC_PATH = "/a2a"
VERSIONS = ("1.0", "0.3")


@dataclass(frozen=True)
class AgentProfile:
    """What the card says about the configured agent."""

    input_modes: tuple[str, ...]
    output_modes: tuple[str, ...]
    skills: tuple[Json, ...]


@functools.lru_cache(maxsize=8)
def _profile(agent_name: str, config: Any) -> AgentProfile:
    agent = load_agent(agent_name, config)
    return AgentProfile(tuple(agent.input_modes), tuple(agent.output_modes), tuple(agent.skills()))


def agent_profile(config: Any) -> AgentProfile:
    return _profile(config.agent, config)


def security(config: Any) -> Json:
    """The card's securitySchemes and securityRequirements when auth is on: one per enabled kind.

    Each requirement names one scheme, so any one of them is enough.
    """
    auth = authenticator(config)
    schemes: Json = {}
    if auth.oidc:
        description = "A JWT from this OpenID Connect issuer, for the audience " + " or ".join(auth.oidc.audience)
        schemes["oidc"] = {"openIdConnectSecurityScheme": {"openIdConnectUrl": auth.oidc.discovery_url, "description": description}}
    if auth.tokens:
        schemes["bearer"] = {"httpAuthSecurityScheme": {"scheme": "Bearer", "description": "A token from A2A_AUTH_TOKENS"}}
    if auth.api_keys:
        schemes["apiKey"] = {"apiKeySecurityScheme": {"location": "header", "name": API_KEY_HEADER, "description": "A key from A2A_AUTH_API_KEYS"}}
    if not schemes:
        return {}
    return {"securitySchemes": schemes, "securityRequirements": [{"schemes": {name: {"list": []}}} for name in schemes]}


def grpc_address(config: Any, base_url: str) -> str:
    """The gRPC target clients dial (``host:port``, no scheme): the card's own host, the gRPC port."""
    if config.grpc_public_address:
        return config.grpc_public_address
    host = urlsplit(base_url).hostname or "127.0.0.1"
    return f"[{host}]:{config.grpc_port}" if ":" in host else f"{host}:{config.grpc_port}"


def build_card(config: Any, base_url: str) -> Json:
    """The card as JSON, for a server reached at ``base_url`` (no trailing slash)."""
    profile = agent_profile(config)
    interfaces = []
    for version in VERSIONS:
        interfaces.append({"url": base_url + JSONRPC_PATH, "protocolBinding": "JSONRPC", "protocolVersion": version})
        interfaces.append({"url": base_url, "protocolBinding": "HTTP+JSON", "protocolVersion": version})
    if config.grpc_port:
        interfaces.append({"url": grpc_address(config, base_url), "protocolBinding": "GRPC", "protocolVersion": "1.0"})
    card: Json = {
        "name": config.agent_name,
        "description": config.agent_description,
        "version": config.agent_version,
        "supportedInterfaces": interfaces,
        "capabilities": {
            "streaming": config.capabilities_streaming,
            "pushNotifications": config.capabilities_push_notifications,
            "extendedAgentCard": False,
        },
        "defaultInputModes": list(profile.input_modes),
        "defaultOutputModes": list(profile.output_modes),
        "skills": list(profile.skills),
        **security(config),
    }
    result = agent_card_to_dict(ParseDict(card, pb.AgentCard()))
    # 0.3 clients read this flag; 1.0 has no place for it.
    result.setdefault("capabilities", {})["stateTransitionHistory"] = config.capabilities_state_transition_history
    return result


def card_body(config: Any, base_url: str) -> tuple[bytes, str]:
    """The card's bytes and their ETag."""
    body = model.dumps(build_card(config, base_url)).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
