"""The agent card: what this server says about itself, in the 1.0 and in the 0.3 shape.

The 1.0 card (``/.well-known/agent-card.json``) lists a JSON-RPC and an HTTP+JSON
interface for each of 1.0 and 0.3, and a 1.0 gRPC interface when the gRPC server is on,
and holds only 1.0 fields, so that it validates against the 1.0 schema. The 0.3 card
(``/.well-known/agent.json``) is the same card written by the SDK's own
``to_compat_agent_card``: ``url``, ``preferredTransport``, ``protocolVersion``,
``additionalInterfaces`` over the 0.3 interfaces. Both are cached by clients
(``Cache-Control`` + ``ETag``; docs/protocol.md).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from a2a.compat.v0_3.conversions import to_compat_agent_card
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import MessageToDict, ParseDict

from queueapp import model
from queueapp.agents import load_agent
from queueapp.auth import API_KEY_HEADER
from queueapp.config import Config
from queueapp.model import Json
from queueapp.oidc import discovery_url

JSONRPC_PATH = "/a2a"
VERSIONS = ("1.0", "0.3")


@dataclass(frozen=True)
class AgentProfile:
    """What the card says about the configured agent."""

    input_modes: tuple[str, ...]
    output_modes: tuple[str, ...]
    skills: tuple[Json, ...]


@functools.lru_cache(maxsize=8)
def _profile(agent_name: str, config: Config) -> AgentProfile:
    agent = load_agent(agent_name, config)
    return AgentProfile(tuple(agent.input_modes), tuple(agent.output_modes), tuple(agent.skills()))


def agent_profile(config: Config) -> AgentProfile:
    return _profile(config.agent, config)


def security(config: Config) -> Json:
    """The card's securitySchemes and securityRequirements when auth is on: one per enabled kind.

    Each requirement names one scheme, so any one of them is enough.
    """
    schemes: Json = {}
    if config.auth_oidc_issuer:
        description = "A JWT from this OpenID Connect issuer, for the audience " + " or ".join(config.auth_oidc_audience)
        schemes["oidc"] = {"openIdConnectSecurityScheme": {"openIdConnectUrl": discovery_url(config.auth_oidc_issuer), "description": description}}
    if config.auth_tokens:
        schemes["bearer"] = {"httpAuthSecurityScheme": {"scheme": "Bearer", "description": "A token from A2A_AUTH_TOKENS"}}
    if config.auth_api_keys:
        schemes["apiKey"] = {"apiKeySecurityScheme": {"location": "header", "name": API_KEY_HEADER, "description": "A key from A2A_AUTH_API_KEYS"}}
    if not schemes:
        return {}
    return {"securitySchemes": schemes, "securityRequirements": [{"schemes": {name: {"list": []}}} for name in schemes]}


def grpc_address(config: Config, base_url: str) -> str:
    """The gRPC target clients dial (``host:port``, no scheme): the card's own host, the gRPC port."""
    if config.grpc_public_address:
        return config.grpc_public_address
    host = urlsplit(base_url).hostname or "127.0.0.1"
    return f"[{host}]:{config.grpc_port}" if ":" in host else f"{host}:{config.grpc_port}"


def _card(config: Config, base_url: str) -> pb.AgentCard:
    """The card, for a server reached at ``base_url`` (no trailing slash)."""
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
    return ParseDict(card, pb.AgentCard())


def build_card(config: Config, base_url: str, version: str = "1.0") -> Json:
    """The card as JSON in the shape of ``version`` (1.0 or 0.3)."""
    card = _card(config, base_url)
    if version == "1.0":
        return MessageToDict(card)
    result = to_compat_agent_card(card).model_dump(mode="json", by_alias=True, exclude_none=True)
    # 0.3 clients read this flag; 1.0 has no place for it.
    result.setdefault("capabilities", {})["stateTransitionHistory"] = config.capabilities_state_transition_history
    return result


def card_body(config: Config, base_url: str, version: str = "1.0") -> tuple[bytes, str]:
    """The card's bytes and their ETag."""
    body = model.dumps(build_card(config, base_url, version)).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
