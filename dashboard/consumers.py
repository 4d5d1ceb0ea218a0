"""The dashboard WebSocket: HTML fragments for htmx, coalesced to a bounded frame rate.

A browser connects to ``/ws/dashboard/?page=<page>&<the page's query>``. On connect and
whenever a change touches its page, the consumer renders the page's live sections with
``hx-swap-oob``; however many changes arrive, it renders at most A2A_DASHBOARD_MAX_FPS
times per second, and a render always reads the state after the last change it saw, so
the screen is right once a burst ends. The browser sends ``{"visible": false}`` when its
tab is hidden and nothing is sent until ``{"visible": true}``, which re-syncs at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard import access, live, sections
from queueapp import config
from queueapp.services import get_services

log = logging.getLogger("dashboard.live")

REFUSED = 4403  # close code for a refused connection (anonymous or another origin)
REFRESH_S = 5.0  # re-render this often anyway: worker heartbeats and the clock send no notices
MAX_CACHED = 500

ViewKey = tuple[Hashable, ...]  # what a frame shows: the page, its query, what the viewer may do


class FrameCache:
    """Frames shared by every browser of this process that watches the same view.

    A frame rendered after the bridge had seen ``generation`` notices shows all of them,
    so another browser wanting the same view at the same generation can reuse it: a
    hundred browsers on the overview cost one render per change, not a hundred. Browsers
    that ask while that frame is being rendered (one change wakes them all at once) wait
    for it rather than render it again.
    """

    def __init__(self) -> None:
        self.frames: dict[ViewKey, tuple[int, float, str]] = {}
        self.rendering: dict[tuple[ViewKey, int], asyncio.Future[str | None]] = {}

    async def frame(self, key: ViewKey, generation: int, now: float, render: Callable[[], Awaitable[str]]) -> str:
        """The view's frame at ``generation``: cached, being rendered by another browser, or rendered now."""
        cached = self.get(key, generation, now)
        if cached is not None:
            return cached
        flight = (key, generation)
        if flight in self.rendering:
            shared = await asyncio.shield(self.rendering[flight])
            if shared is not None:
                return shared
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.rendering[flight] = future
        try:
            result = await render()
            self.put(key, generation, now, result)
            future.set_result(result)
            return result
        finally:
            if not future.done():
                future.set_result(None)  # failed or canceled: the waiters render for themselves
            if self.rendering.get(flight) is future:
                del self.rendering[flight]

    def get(self, key: ViewKey, generation: int, now: float) -> str | None:
        hit = self.frames.get(key)
        if hit and hit[0] == generation and now - hit[1] < REFRESH_S:
            return hit[2]
        return None

    def put(self, key: ViewKey, generation: int, now: float, frame: str) -> None:
        if len(self.frames) >= MAX_CACHED:
            self.frames.clear()
        self.frames[key] = (generation, now, frame)


frames = FrameCache()


def same_origin(scope: Mapping[str, Any]) -> bool:
    """The Origin header must name the host the page was served from."""
    headers: dict[str, str] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    origin, host = headers.get("origin", ""), headers.get("host", "")
    if not origin or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


class DashboardConsumer(AsyncWebsocketConsumer):
    async def refuse(self) -> None:
        """Close with 4403. A close before the accept would refuse the handshake itself
        (HTTP 403), which a browser only reports as 1006; accepting first lets it read the code.
        Nothing is sent in between."""
        await self.accept()
        await self.close(code=REFUSED)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not same_origin(self.scope):
            # Another site's page gets no handshake at all (HTTP 403).
            log.info("Dashboard WebSocket refused, origin_ok=False, user=%s", getattr(user, "username", "") or "anonymous")
            await self.close(code=REFUSED)
            return
        if not access.can_view(user):
            log.info("Dashboard WebSocket refused, origin_ok=True, user=anonymous")
            await self.refuse()
            return
        params = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1")))
        self.page = params.pop("page", "overview")
        if self.page not in sections.PAGES:
            await self.refuse()
            return
        self.params = params
        self.extra = {"can_act": access.can_act(user), "read_only": config.get().dashboard_read_only}
        self.min_interval = 1.0 / config.get().dashboard_max_fps
        self.visible = True
        self.dirty = asyncio.Event()
        services = await get_services()
        self.store = services.store
        self.bridge = live.ensure_bridge(services)
        self.cache_key = (self.page, tuple(sorted(params.items())), self.extra["can_act"], self.extra["read_only"])
        self.bridge.subscribe(self.on_changes)
        await self.accept()
        self.dirty.set()  # the first frame re-syncs the page (also after a reconnect)
        self.renderer = asyncio.create_task(self._render_loop(), name="dashboard-render")

    async def disconnect(self, code: int) -> None:
        renderer = getattr(self, "renderer", None)
        if renderer is not None:
            renderer.cancel()
            await asyncio.gather(renderer, return_exceptions=True)
        if hasattr(self, "bridge"):
            self.bridge.unsubscribe(self.on_changes)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "{}")
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("visible"), bool):
            self.visible = message["visible"]
            if self.visible:
                self.dirty.set()

    def on_changes(self, event: dict[str, Any]) -> None:
        """A batch of changes from this process's bridge (``live.Bridge.subscribe``)."""
        if sections.relevant(self.page, self.params, event.get("tasks", []), event.get("contexts", []), event.get("everything", False)):
            self.dirty.set()

    async def _frame(self) -> str:
        loop = asyncio.get_running_loop()
        generation, now = self.bridge.generation, loop.time()
        return await frames.frame(self.cache_key, generation, now, lambda: sections.render_fragments(self.store, self.page, self.params, self.extra))

    async def _render_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(self.dirty.wait(), REFRESH_S)
            except TimeoutError:
                self.dirty.set()
            if not self.visible:
                # Hidden tab: keep the change pending and send nothing until it is visible.
                await asyncio.sleep(self.min_interval)
                continue
            self.dirty.clear()
            started = loop.time()
            try:
                await self.send(text_data=await self._frame())
            except Exception:
                log.exception("Dashboard render failed, page=%s", self.page)
            await asyncio.sleep(max(self.min_interval - (loop.time() - started), 0))
