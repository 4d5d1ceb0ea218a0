"""The gRPC side of the ingress load: SendMessage calls on one HTTP/2 channel.

The generated stub (``a2a_pb2_grpc``) is called directly, the gRPC analogue of the raw
HTTP/1.1 bytes of ``loadgen``: no A2A client library in between. ``concurrency`` callers
share one channel (gRPC multiplexes them as HTTP/2 streams), each sending back to back.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
from a2a.types import a2a_pb2 as pb
from a2a.types import a2a_pb2_grpc

from bench.loadgen import LoadResult

METADATA = (("a2a-version", "1.0"),)


def send_request(*, blocking: bool) -> pb.SendMessageRequest:
    """One SendMessage with a fresh message id (ours deduplicates by id)."""
    message = pb.Message(message_id=str(uuid.uuid4()), role=pb.Role.ROLE_USER, parts=[pb.Part(text="ping")])
    return pb.SendMessageRequest(message=message, configuration=pb.SendMessageConfiguration(return_immediately=not blocking))


async def _caller(stub: a2a_pb2_grpc.A2AServiceStub, blocking: bool, until: float, warm_until: float, result: LoadResult) -> None:
    while (now := time.perf_counter()) < until:
        try:
            await stub.SendMessage(send_request(blocking=blocking), metadata=METADATA, timeout=30)
        except grpc.aio.AioRpcError as exc:
            result.errors += 1
            result.statuses[exc.code().value[0]] = result.statuses.get(exc.code().value[0], 0) + 1
            continue
        if now >= warm_until:
            result.statuses[0] = result.statuses.get(0, 0) + 1  # 0: gRPC OK
            result.latencies_ms.append((time.perf_counter() - now) * 1000)


async def run_grpc_load(target: str, *, blocking: bool, concurrency: int, seconds: float, warmup: float = 0.5) -> LoadResult:
    """``concurrency`` callers for ``warmup + seconds``; only the last ``seconds`` count."""
    result = LoadResult()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = a2a_pb2_grpc.A2AServiceStub(channel)
        await channel.channel_ready()
        start = time.perf_counter()
        warm_until, until = start + warmup, start + warmup + seconds
        await asyncio.gather(*(_caller(stub, blocking, until, warm_until, result) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - warm_until
    return result
