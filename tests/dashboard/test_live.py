"""The dashboard WebSocket: Channels' WebsocketCommunicator on the project's ASGI app,
with the real Redis pub/sub channel layer and the real notify channel."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import websockets
from channels.testing import WebsocketCommunicator

from dashboard import consumers, live
from queueapp import model
from tests.dashboard.support import session_cookie, submit

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE_LENGTH = re.compile(r'data-testid="queue-length">(\d+)<')


def communicator(path: str, cookie: str | None = None, origin: str = "http://testserver", host: str = "testserver") -> WebsocketCommunicator:
    from a2a_site.asgi import application

    headers = [(b"host", host.encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
async def staff_cookie(users, channel_layer, dash_store):
    return await session_cookie(await users("boss", staff=True))


async def queue_length_frames(comm: WebsocketCommunicator, until: int, timeout: float = 20) -> list[int]:
    """Read frames until one shows the queue length ``until``; return every length seen."""
    seen: list[int] = []
    async with asyncio.timeout(timeout):
        while not seen or seen[-1] != until:
            frame = await comm.receive_from(timeout)
            match = QUEUE_LENGTH.search(frame)
            if match:
                seen.append(int(match.group(1)))
    return seen


async def test_a_change_in_redis_reaches_a_connected_client(staff_cookie, dash_store):
    comm = communicator("/ws/dashboard/?page=overview", staff_cookie)
    connected, _ = await comm.connect()
    assert connected
    first = await comm.receive_from(10)  # the re-sync frame on connect
    assert 'id="summary"' in first and 'hx-swap-oob="true"' in first and QUEUE_LENGTH.search(first).group(1) == "0"
    await submit(dash_store, "hello")
    assert (await queue_length_frames(comm, until=1))[-1] == 1
    await comm.disconnect()


async def test_task_page_follows_its_task(staff_cookie, dash_store):
    record = await submit(dash_store, "watch me")
    comm = communicator(f"/ws/dashboard/?page=task&id={record.id}", staff_cookie)
    assert (await comm.connect())[0]
    assert "state-submitted" in await comm.receive_from(10)
    await dash_store.request_cancel(record.id)
    async with asyncio.timeout(10):
        while "state-canceled" not in (frame := await comm.receive_from(10)):
            pass
    assert '<section id="task"' in frame
    await comm.disconnect()


async def test_coalescing_bounds_frames_under_a_burst_of_1000_changes(staff_cookie, dash_store, dash_services, set_config):
    set_config(dashboard_max_fps=4.0)
    comm = communicator("/ws/dashboard/?page=queue", staff_cookie)
    assert (await comm.connect())[0]
    await comm.receive_from(10)
    bridge = live.ensure_bridge(dash_services)
    heard_before = bridge.generation
    loop = asyncio.get_running_loop()
    started = loop.time()
    for batch in range(10):
        await asyncio.gather(*(submit(dash_store, f"burst {batch}-{i}") for i in range(100)))
    seen = await queue_length_frames(comm, until=1000, timeout=60)
    assert seen[-1] == 1000  # right once the burst is over
    # The page reads Redis, so it can show 1000 before this process has heard every notice
    # (on a busy machine, seconds before). Once all are heard, frames stop, all showing 1000.
    async with asyncio.timeout(30):
        while bridge.generation < heard_before + 1000:
            await asyncio.sleep(0.05)
    late = []
    while not await comm.receive_nothing(1.0):
        late.append(QUEUE_LENGTH.search(await comm.receive_from(1.0)).group(1))
    assert set(late) <= {"1000"}, late  # and then a second without any frame
    elapsed = loop.time() - started
    # However fast the changes came, frames arrive at most 4 per second (+1 for the edges).
    assert len(seen) + len(late) <= elapsed * 4 + 2, (len(seen), len(late), elapsed)
    await comm.disconnect()


async def test_a_hidden_tab_receives_nothing_until_visible(staff_cookie, dash_store):
    comm = communicator("/ws/dashboard/?page=overview", staff_cookie)
    assert (await comm.connect())[0]
    await comm.receive_from(10)
    await comm.send_to(text_data=json.dumps({"visible": False}))
    await asyncio.sleep(0.3)
    for i in range(5):
        await submit(dash_store, f"while hidden {i}")
    assert await comm.receive_nothing(1.0)
    await comm.send_to(text_data=json.dumps({"visible": True}))
    assert (await queue_length_frames(comm, until=5))[-1] == 5
    await comm.send_to(text_data="not json")  # ignored, the connection stays
    await submit(dash_store, "after")
    assert (await queue_length_frames(comm, until=6))[-1] == 6
    await comm.disconnect()


async def test_anonymous_websocket_is_closed_with_4403_over_a_real_connection(server):
    """Closed after the handshake, so a browser reads 4403 (a refused handshake only shows as 1006)."""
    url = server.replace("http://", "ws://") + "/ws/dashboard/?page=overview"
    async with websockets.connect(url, origin=server) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 4403


async def test_cross_origin_websocket_is_refused(staff_cookie):
    # The last is DNS rebinding: a page of evil.example whose name now resolves to this server.
    for origin, host in (("http://evil.example", "testserver"), ("", "testserver"), ("http://evil.example", "evil.example")):
        comm = communicator("/ws/dashboard/?page=overview", staff_cookie, origin=origin, host=host)
        connected, _ = await comm.connect()
        assert not connected, (origin, host)


async def test_unknown_page_is_refused(staff_cookie):
    comm = communicator("/ws/dashboard/?page=secrets", staff_cookie)
    await comm.connect()
    assert (await comm.receive_output(5)) == {"type": "websocket.close", "code": 4403}


async def test_a_change_reaches_the_consumers_of_this_process_without_the_channel_layer(staff_cookie, dash_store, dash_services, monkeypatch):
    # The notice was heard from Redis once; it goes straight to this process's consumers.
    from channels.layers import get_channel_layer

    async def unreachable(*args, **kwargs):
        raise ConnectionError("the channel layer is not used for local changes")

    monkeypatch.setattr(get_channel_layer(), "group_send", unreachable)
    comm = communicator("/ws/dashboard/?page=overview", staff_cookie)
    assert (await comm.connect())[0]
    await comm.receive_from(10)
    await submit(dash_store, "hello")
    assert (await queue_length_frames(comm, until=1))[-1] == 1
    await comm.disconnect()
    assert not live.ensure_bridge(dash_services).subscribers  # a closed connection is forgotten


async def test_public_mode_lets_anonymous_watch(channel_layer, dash_store, set_config, transactional_db):
    set_config(dashboard_public=True)
    comm = communicator("/ws/dashboard/?page=overview")
    assert (await comm.connect())[0]
    frame = await comm.receive_from(10)
    assert "Pause the queue" not in frame
    await comm.disconnect()


async def test_bridge_forwards_batches_not_every_notice(dash_store, channel_layer):
    bridge = live.Bridge(dash_store)
    for i in range(500):
        bridge.on_notice({"task_id": f"t{i}", "context_id": "c"})
    batch = bridge.take()
    assert batch["everything"] and batch["tasks"] == []  # too many ids: one "everything" batch
    bridge.on_notice({"task_id": "one", "context_id": "c1"})
    batch = bridge.take()
    assert batch == {"type": "queue.changed", "tasks": ["one"], "contexts": ["c1"], "everything": False}
    bridge.on_notice({"event": "paused"})
    assert bridge.take()["everything"]


async def test_real_browser_protocol_over_uvicorn(server, users, dash_store):
    """The same over a real WebSocket connection to the app served by uvicorn."""
    cookie = await session_cookie(await users("boss2", staff=True))
    url = server.replace("http://", "ws://") + "/ws/dashboard/?page=overview"
    headers = {"Cookie": f"sessionid={cookie}"}
    async with websockets.connect(url, origin=server, additional_headers=headers) as ws:
        assert QUEUE_LENGTH.search(await asyncio.wait_for(ws.recv(), 10)).group(1) == "0"
        await dash_store.create_task(model.message("user", [{"text": "x"}], message_id="m"))
        async with asyncio.timeout(10):
            while QUEUE_LENGTH.search(await ws.recv()).group(1) != "1":
                pass
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(url, origin="http://evil.example", additional_headers=headers):
            pass


async def test_worker_liveness_shows_up_without_any_task_change(staff_cookie, dash_store):
    """Heartbeats publish no notice; the page re-renders every few seconds anyway."""
    comm = communicator("/ws/dashboard/?page=overview", staff_cookie)
    assert (await comm.connect())[0]
    assert 'data-testid="worker-count">0<' in await comm.receive_from(10)

    async def beat() -> None:  # as a live worker does: a worker silent for a lease (3 s here) is dead
        while True:
            await dash_store.heartbeat("host-b:7:feed", {"host": "host-b", "pid": 7, "tasks": []}, [], 30)
            await asyncio.sleep(0.5)

    beating = asyncio.create_task(beat())
    try:
        async with asyncio.timeout(15):
            while 'data-testid="worker-count">1<' not in (frame := await comm.receive_from(15)):
                pass
    finally:
        beating.cancel()
    assert "host-b:7" in frame
    await comm.disconnect()


async def test_browsers_on_the_same_view_share_one_render(staff_cookie, dash_store, monkeypatch):
    from dashboard import sections

    renders = []
    original = sections.render_fragments

    async def counting(*args, **kwargs):
        renders.append(args[1])
        return await original(*args, **kwargs)

    monkeypatch.setattr(sections, "render_fragments", counting)
    # No periodic refresh during the test: on a busy machine it outlasted the 5 s refresh and
    # the refreshes counted as renders. The shared cache then keeps a frame until a change.
    monkeypatch.setattr(consumers, "REFRESH_S", 300)
    consumers.frames.frames.clear()  # frames of earlier tests (other event loops, other generations)
    clients = [communicator("/ws/dashboard/?page=active", staff_cookie) for _ in range(3)]
    for comm in clients:
        assert (await comm.connect())[0]
        await comm.receive_from(10)
    await submit(dash_store, "shared")
    for comm in clients:
        assert (await queue_length_frames(comm, until=1))[-1] == 1
    assert len(renders) == 2  # the first sync and the change, not 6
    for comm in clients:
        await comm.disconnect()
