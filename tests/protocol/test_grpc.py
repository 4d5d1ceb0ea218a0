"""The gRPC binding of a live ``serve``: its card entry, the error table, limits, auth and streams.

Send, stream, get, cancel, subscribe and the push configs run through the SDK's gRPC
client in test_official_client.py, beside the other bindings; this file holds what is
gRPC's own. Calls go to a real port, with the SDK's client or its generated stub.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from a2a.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.types import a2a_pb2 as pb
from a2a.types import a2a_pb2_grpc
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from queueapp.model import new_id
from queueapp.protocol.errors import ERROR_TABLE
from queueapp.protocol.grpc_binding import SERVICE, status_of
from tests.protocol.conftest import Live, official_client, start_live, user_message
from tests.support import ServeProcess, base_env

S = pb.TaskState
TOKEN, KEY, BOB = "alice-grpc-token", "ci-grpc-key", "bob-grpc-token"
V1 = (("a2a-version", "1.0"),)


@contextlib.asynccontextmanager
async def stub(target: str, credentials: grpc.ChannelCredentials | None = None) -> AsyncIterator[a2a_pb2_grpc.A2AServiceStub]:
    channel = grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
    async with channel:
        yield a2a_pb2_grpc.A2AServiceStub(channel)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status in the trailers of {error.code().name}"
    info = error_details_pb2.ErrorInfo()
    assert status.details and status.details[0].Unpack(info)
    return info


def request(text: str, **configuration) -> pb.SendMessageRequest:
    return pb.SendMessageRequest(message=user_message(text), configuration=pb.SendMessageConfiguration(**configuration))


def test_card_declares_the_grpc_interface_on_its_port(live):
    card = httpx.get(f"{live.url}/.well-known/agent-card.json").json()
    grpc_interfaces = [i for i in card["supportedInterfaces"] if i["protocolBinding"] == "GRPC"]
    assert grpc_interfaces == [{"url": live.serve.grpc_target, "protocolBinding": "GRPC", "protocolVersion": "1.0"}]


async def test_list_tasks_pages_through_a_context(live):
    client = await official_client(live.url, "GRPC", "1.0", streaming=False)
    context_id = new_id()
    for text in ("one", "two", "three"):
        [event async for event in client.send_message(pb.SendMessageRequest(message=user_message(text, context_id=context_id)))]
    first = await client.list_tasks(pb.ListTasksRequest(context_id=context_id, page_size=2))
    assert len(first.tasks) == 2 and first.total_size == 3 and first.next_page_token
    second = await client.list_tasks(pb.ListTasksRequest(context_id=context_id, page_size=2, page_token=first.next_page_token))
    assert len(second.tasks) == 1 and not second.next_page_token
    assert {t.history[0].parts[0].text for t in [*first.tasks, *second.tasks]} == {"one", "two", "three"}


async def finished_task(service: a2a_pb2_grpc.A2AServiceStub) -> pb.Task:
    return (await service.SendMessage(request("hello"), metadata=V1)).task


ERROR_CASES = {
    "unknown task": (lambda s, done: s.GetTask(pb.GetTaskRequest(id=new_id())), "NOT_FOUND", "TASK_NOT_FOUND"),
    "no parts": (lambda s, done: s.SendMessage(pb.SendMessageRequest(message=pb.Message(message_id=new_id(), role=pb.Role.ROLE_USER))), "INVALID_ARGUMENT", "INVALID_PARAMS"),
    "agent role": (
        lambda s, done: s.SendMessage(pb.SendMessageRequest(message=pb.Message(message_id=new_id(), role=pb.Role.ROLE_AGENT, parts=[pb.Part(text="x")]))),
        "INVALID_ARGUMENT",
        "INVALID_PARAMS",
    ),
    "page too big": (lambda s, done: s.ListTasks(pb.ListTasksRequest(page_size=1000)), "INVALID_ARGUMENT", "INVALID_PARAMS"),
    "state naming none": (lambda s, done: s.ListTasks(pb.ListTasksRequest(status=99)), "INVALID_ARGUMENT", "INVALID_PARAMS"),
    "id too long": (lambda s, done: s.SendMessage(pb.SendMessageRequest(message=user_message("x", message_id="m" * 257))), "INVALID_ARGUMENT", "INVALID_PARAMS"),
    "cancel finished": (lambda s, done: s.CancelTask(pb.CancelTaskRequest(id=done.id)), "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE"),
    "extended card": (lambda s, done: s.GetExtendedAgentCard(pb.GetExtendedAgentCardRequest()), "FAILED_PRECONDITION", "EXTENDED_AGENT_CARD_NOT_CONFIGURED"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
async def test_errors_carry_the_spec_status_and_error_info(live, case):
    call, code, reason = ERROR_CASES[case]
    async with stub(live.serve.grpc_target) as service:
        done = await finished_task(service)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(service, done)
    assert caught.value.code() == grpc.StatusCode[code]
    info = error_info(caught.value)
    assert (info.reason, info.domain) == (reason, "a2a-protocol.org")
    assert caught.value.details()  # a sentence saying what is wrong


async def test_stream_errors_come_as_a_status_before_any_event(live):
    async with stub(live.serve.grpc_target) as service:
        done = await finished_task(service)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [event async for event in service.SubscribeToTask(pb.SubscribeToTaskRequest(id=done.id))]
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED  # the spec's code for UnsupportedOperationError
    assert error_info(caught.value).reason == "UNSUPPORTED_OPERATION"


async def test_a_version_other_than_1_0_is_refused(live):
    async with stub(live.serve.grpc_target) as service:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service.GetTask(pb.GetTaskRequest(id=new_id()), metadata=(("a2a-version", "0.3"),))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error_info(caught.value).reason == "VERSION_NOT_SUPPORTED"
    assert "0.3" in caught.value.details()


def length_delimited(field: int, payload: bytes) -> bytes:
    """One length-delimited field (a string or a message) in the protobuf wire format."""
    size, varint = len(payload), b""
    while size > 0x7F:
        varint += bytes([size & 0x7F | 0x80])
        size >>= 7
    return bytes([field << 3 | 2]) + varint + bytes([size]) + payload


def nested_struct(depth: int) -> bytes:
    """A google.protobuf.Struct holding a Struct ``depth`` levels deep: {"a": {"a": ...}}."""
    inner = b""
    for _ in range(depth):
        inner = length_delimited(1, length_delimited(1, b"a") + length_delimited(2, length_delimited(5, inner)))
    return inner


def undecodable(method: MethodDescriptor) -> dict[str, bytes]:
    """Bytes that are no request of ``method``: field 1 of every request is a string."""
    cases = {"not protobuf": b"\xff\xff\xff\xff", "truncated field": bytes.fromhex("0a056162"), "bad UTF-8": length_delimited(1, b"\xff\xfe")}
    structs = [f.number for f in method.input_type.fields if f.message_type and f.message_type.full_name == "google.protobuf.Struct"]
    if structs:
        cases["Struct 40 levels deep"] = length_delimited(structs[0], nested_struct(40))
    return cases


@pytest.mark.parametrize("method", list(SERVICE.methods), ids=lambda m: m.name)
async def test_undecodable_request_bytes_are_a_parse_error_on_every_method(live, method):
    async with grpc.aio.insecure_channel(live.serve.grpc_target) as channel:
        path = f"/{SERVICE.full_name}/{method.name}"
        call = channel.unary_stream(path) if method.server_streaming else channel.unary_unary(path)  # bytes in, bytes out
        for case, raw in undecodable(method).items():
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                answer = call(raw, metadata=V1)
                await (answer.read() if method.server_streaming else answer)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, caught.value.details())
            assert error_info(caught.value).reason == "PARSE_ERROR"
            assert f"not a {method.input_type.full_name}" in caught.value.details()
    assert f"WARNING queueapp.protocol: gRPC {method.name}: a request of" in live.serve.output
    assert "Traceback" not in live.serve.output and "DecodeError" not in live.serve.output


async def test_a_message_over_the_body_limit_is_refused_and_the_server_goes_on(live):
    client = await official_client(live.url, "GRPC", "1.0", streaming=False)
    huge = pb.SendMessageRequest(message=user_message("x" * (1024 * 1024 + 1)))  # A2A_MAX_BODY_BYTES defaults to 1 MiB
    with pytest.raises(A2AClientError, match="RESOURCE_EXHAUSTED"):
        [event async for event in client.send_message(huge)]
    events = [event async for event in client.send_message(pb.SendMessageRequest(message=user_message("x" * 1000)))]
    assert events[0].task.status.state == S.TASK_STATE_COMPLETED


async def test_a_stream_ends_when_the_task_waits_for_input(live):
    async with stub(live.serve.grpc_target) as service, asyncio.timeout(20):
        events = [event async for event in service.SendStreamingMessage(request("ask Your name?"), metadata=V1)]
    assert events[-1].status_update.status.state == S.TASK_STATE_INPUT_REQUIRED
    assert events[-1].status_update.status.message.parts[0].text == "Your name?"


async def test_a_subscription_to_a_task_waiting_for_input_ends_with_its_terminal_state(live):
    async with stub(live.serve.grpc_target) as service, asyncio.timeout(20):
        asking = (await service.SendMessage(request("ask Your name?"), metadata=V1)).task
        assert asking.status.state == S.TASK_STATE_INPUT_REQUIRED
        call = service.SubscribeToTask(pb.SubscribeToTaskRequest(id=asking.id), metadata=V1)
        first = await call.read()
        assert first.task.status.state == S.TASK_STATE_INPUT_REQUIRED
        reply = pb.Message(message_id=new_id(), role=pb.Role.ROLE_USER, parts=[pb.Part(text="Ada")], task_id=asking.id, context_id=asking.context_id)
        await service.SendMessage(pb.SendMessageRequest(message=reply), metadata=V1)
        rest = []
        while (event := await call.read()) != grpc.aio.EOF:  # read() to the end: the stream closes itself
            rest.append(event)
    assert rest[-1].status_update.status.state == S.TASK_STATE_COMPLETED


async def test_a_client_that_cancels_its_stream_leaves_nothing_running(live):
    async with stub(live.serve.grpc_target) as service:
        call = service.SendStreamingMessage(request("sleep 2"), metadata=V1)
        first = await call.read()
        call.cancel()
        task_id = first.task.id
        async with asyncio.timeout(30):  # polled without blocking the loop, which sends the cancel
            while "gRPC SendStreamingMessage stream closed: cancelled" not in live.serve.output:
                await asyncio.sleep(0.05)
        # The task is queued work, not tied to the call: it finishes all the same.
        async with asyncio.timeout(30):
            while (await service.GetTask(pb.GetTaskRequest(id=task_id))).status.state != S.TASK_STATE_COMPLETED:
                await asyncio.sleep(0.1)
    assert "Traceback" not in live.serve.output


@pytest.fixture(scope="module")
def secured() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="a2a-grpc-auth-") as folder:
        server = start_live(Path(folder), A2A_AUTH_TOKENS=f"alice:{TOKEN},bob:{BOB}", A2A_AUTH_API_KEYS=f"ci:{KEY}")
        yield server
        server.serve.stop()
        server.redis.stop()


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer wrong"),), (("x-api-key", "wrong"),)], ids=["none", "bad-token", "bad-key"])
async def test_missing_or_wrong_credentials_are_unauthenticated(secured, metadata):
    async with stub(secured.serve.grpc_target) as service:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service.SendMessage(request("who am I"), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == "UNAUTHENTICATED"
    assert secured.redis.client().llen("a2a:queue") == 0  # nothing was queued


async def test_credentials_in_metadata_name_the_identity_on_the_task(secured):
    client = await official_client(secured.url, "GRPC", "1.0", streaming=False)
    by_token = ClientCallContext(service_parameters={"Authorization": f"Bearer {TOKEN}"})
    task = [e async for e in client.send_message(request("who am I"), context=by_token)][0].task
    async with stub(secured.serve.grpc_target) as service:
        keyed = await service.SendMessage(request("who am I"), metadata=(("x-api-key", KEY),))
    redis = secured.redis.client()
    assert redis.hget(f"a2a:deadletter:{task.id}", "identity") == "alice"
    assert redis.hget(f"a2a:deadletter:{keyed.task.id}", "identity") == "ci"


async def test_one_identity_cannot_reach_anothers_tasks(secured):
    alice, bob = (("authorization", f"Bearer {TOKEN}"),), (("authorization", f"Bearer {BOB}"),)
    async with stub(secured.serve.grpc_target) as service:
        task = (await service.SendMessage(request("sleep 5", return_immediately=True), metadata=alice)).task
        for call in (
            service.GetTask(pb.GetTaskRequest(id=task.id), metadata=bob),
            service.CancelTask(pb.CancelTaskRequest(id=task.id), metadata=bob),
            service.SubscribeToTask(pb.SubscribeToTaskRequest(id=task.id), metadata=bob).read(),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await service.ListTasks(pb.ListTasksRequest(), metadata=bob)
        assert task.id not in {t.id for t in listed.tasks}
        mine = await service.GetTask(pb.GetTaskRequest(id=task.id), metadata=alice)
    assert mine.status.state in (S.TASK_STATE_SUBMITTED, S.TASK_STATE_WORKING)  # bob's cancel did nothing


def test_a_taken_grpc_port_stops_serve_with_a_clear_error(live, tmp_path):
    env = base_env(live.redis.url, str(tmp_path / "data"), A2A_GRPC_PORT=live.serve.env["A2A_GRPC_PORT"])
    second = ServeProcess(env, tmp_path / "second.log").start(wait=False)
    assert second.wait(30) != 0
    port = live.serve.env["A2A_GRPC_PORT"]
    assert f"CommandError: cannot listen on 127.0.0.1:{port} (gRPC port {port}): address already in use" in second.output
    assert "A2A endpoint:" not in second.output  # stopped before the banner


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_daphne_serves_grpc_over_tls_and_card_off_switch(processes, redis_url, tmp_path):
    cert, key = self_signed(tmp_path)
    serve = processes.serve(redis_url, extra_args=["--server", "daphne"], A2A_GRPC_TLS_CERT=str(cert), A2A_GRPC_TLS_KEY=str(key))
    target = serve.grpc_target
    assert f"gRPC:          localhost:{serve.env['A2A_GRPC_PORT']} (TLS)" in serve.output
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    async with stub(target, credentials) as service:
        reply = await service.SendMessage(request("over TLS"), metadata=V1)
    assert reply.task.status.state == S.TASK_STATE_COMPLETED
    async with stub(target) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await plaintext.GetTask(pb.GetTaskRequest(id=new_id()), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

    off = processes.serve(redis_url, A2A_GRPC_PORT="0")
    card = httpx.get(f"{off.url}/.well-known/agent-card.json").json()
    assert "GRPC" not in {i["protocolBinding"] for i in card["supportedInterfaces"]}
    assert "gRPC:" not in off.output


@pytest.mark.parametrize("error_type", list(ERROR_TABLE), ids=lambda t: t.__name__)
def test_every_error_of_the_table_has_a_grpc_status_with_its_error_info(error_type):
    status = status_of(error_type("what went wrong"))
    assert status.code == grpc.StatusCode[ERROR_TABLE[error_type].grpc]
    assert status.details == "what went wrong"
    (key, value), = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(value).details[0].Unpack(info)
    assert (info.reason, info.domain) == (ERROR_TABLE[error_type].reason, "a2a-protocol.org")
