"""The reference side of the ingress benchmark: the a2a-sdk's own Starlette server.

JSON-RPC at ``/a2a``, the SDK's default request handler with its in-memory task store,
and an executor that completes every task at once. Run it with
``python -m bench.sdk_server PORT``; it serves under uvicorn until terminated.
"""

from __future__ import annotations

import sys

from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes.agent_card_routes import create_agent_card_routes
from a2a.server.routes.jsonrpc_routes import create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class CompleteAtOnce(AgentExecutor):
    """The trivial executor: every task is submitted and completed, with no output."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.current_task is None:
            await event_queue.enqueue_event(new_task_from_user_message(context.message))
        await TaskUpdater(event_queue, context.task_id, context.context_id).complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def make_app(port: int) -> Starlette:
    card = AgentCard(
        name="SDK reference",
        description="The a2a-sdk's Starlette server with an in-memory task store.",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=f"http://127.0.0.1:{port}/a2a", protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="noop", name="noop", description="Completes every task at once.", tags=["noop"])],
    )
    handler = DefaultRequestHandler(agent_executor=CompleteAtOnce(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/a2a"),
        Route("/health", lambda request: PlainTextResponse("ok")),
    ]
    return Starlette(routes=routes)


def main(port: int) -> None:
    import uvicorn

    uvicorn.run(make_app(port), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
