"""The reference side of the ingress benchmark: the a2a-sdk's own Starlette server.

JSON-RPC at ``/a2a``, the SDK's default request handler with its in-memory task store,
and an executor that completes every task at once. Run it with
``python -m bench.sdk_server PORT [GRPC_PORT]``; it serves under uvicorn until terminated.
With GRPC_PORT, the SDK's own gRPC handler (``GrpcHandler``) serves the same request
handler on a ``grpc.aio`` server on uvicorn's event loop, as ``serve`` does for ours.
"""

from __future__ import annotations

import contextlib
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


def make_app(port: int, grpc_port: int = 0) -> Starlette:
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
    if grpc_port:
        card.supported_interfaces.append(AgentInterface(url=f"127.0.0.1:{grpc_port}", protocol_binding="GRPC", protocol_version="1.0"))
    handler = DefaultRequestHandler(agent_executor=CompleteAtOnce(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/a2a"),
        Route("/health", lambda request: PlainTextResponse("ok")),
    ]
    return Starlette(routes=routes, lifespan=grpc_lifespan(handler, grpc_port) if grpc_port else None)


def grpc_lifespan(handler: DefaultRequestHandler, grpc_port: int):
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        import grpc
        from a2a.server.request_handlers.grpc_handler import GrpcHandler
        from a2a.types import a2a_pb2_grpc

        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        await server.start()
        try:
            yield
        finally:
            await server.stop(1)

    return lifespan


def main(port: int, grpc_port: int = 0) -> None:
    import uvicorn

    uvicorn.run(make_app(port, grpc_port), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
