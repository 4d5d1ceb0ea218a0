"""The a2a-sdk's reference server over JSON-RPC and HTTP+JSON, to hold a kit case against it.

``python scripts/sdk_reference.py PORT [--validate-input-modes]`` serves the SDK's own
routes and ``DefaultRequestHandler`` with the benchmark's executor (every task completes at
once). ``--validate-input-modes`` turns on the SDK's check that a part's media type is one
the card accepts, which is what the 1.0 spec asks for (ContentTypeNotSupportedError).
docs/protocol.md shows the kit's CORE-SEND-003 failing on it with the check on, as on this
server, and passing with it off: the kit expects a success where the spec asks for an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes.agent_card_routes import create_agent_card_routes
from a2a.server.routes.jsonrpc_routes import create_jsonrpc_routes
from a2a.server.routes.rest_routes import create_rest_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sdk_server import CompleteAtOnce  # noqa: E402


def make_app(port: int, validate_input_modes: bool) -> Starlette:
    base = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="SDK reference",
        description="The a2a-sdk's own routes and request handler.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=f"{base}/a2a/", protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=base, protocol_binding="HTTP+JSON", protocol_version="1.0"),
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="noop", name="noop", description="Completes every task at once.", tags=["noop"])],
    )
    handler = DefaultRequestHandler(agent_executor=CompleteAtOnce(), task_store=InMemoryTaskStore(), agent_card=card, validate_input_modes=validate_input_modes)
    return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/a2a/"), *create_rest_routes(handler)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--validate-input-modes", action="store_true")
    args = parser.parse_args()
    uvicorn.run(make_app(args.port, args.validate_input_modes), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
