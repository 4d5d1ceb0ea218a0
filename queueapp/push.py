"""Push notifications: which webhook urls are allowed, and delivering events to them.

A push config names a url the server will POST to from inside the deployment, so an
unchecked url lets any client make the server call its own private network (SSRF).
:func:`check_url` refuses anything that is not http(s) and, unless private targets are
allowed (``A2A_PUSH_ALLOW_PRIVATE``, for development and tests), any host that is or
resolves to a loopback, private, link-local or otherwise non-public address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import Counter, deque
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from queueapp import model, tracing
from queueapp.config import Config
from queueapp.model import Json

# httpx is imported where a notification is sent: it is one of the larger imports of a
# worker's start-up (its command-line tool comes with it), and most tasks have no push config.
if TYPE_CHECKING:
    import httpx

    from queueapp.model import TaskRecord
    from queueapp.store import QueueStore

log = logging.getLogger("queueapp.push")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# IPv6 ranges whose last 32 bits carry an IPv4 address that a gateway or the host's own
# stack may reach: IPv4-compatible (::/96), SIIT-translated (::ffff:0:0:0/96) and the
# well-known NAT64 prefix (64:ff9b::/96, RFC 6052). Each is as public as its IPv4 address.
_EMBEDDING_IPV4 = tuple(ipaddress.IPv6Network(net) for net in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
# Never public whatever they embed: local-use NAT64 (RFC 8215) and the old site-local range.
_LOCAL_IPV6 = tuple(ipaddress.IPv6Network(net) for net in ("64:ff9b:1::/48", "fec0::/10"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (mapped, compatible, NAT64, 6to4, Teredo)."""
    found = [v4 for v4 in (address.ipv4_mapped, address.sixtofour) if v4 is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in net for net in _EMBEDDING_IPV4):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local or any(address in net for net in _LOCAL_IPV6):
            return False
        if not all(_is_public(v4) for v4 in _embedded_ipv4(address)):
            return False
    return address.is_global and not address.is_multicast


def _resolve(host: str) -> list[IPAddress]:
    """Every address ``host`` names: itself when it is a literal, else what DNS answers."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"The push notification url's host {host!r} cannot be resolved ({exc}).") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str, allow_private: bool) -> None:
    """Raise ``ValueError`` with a sentence a client can act on when ``url`` may not be a webhook."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("The push notification url is missing: expected an http:// or https:// url.")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"The push notification url {url!r} is not a valid url ({exc}).") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"The push notification url {url!r} must use http or https, not {parts.scheme or 'no scheme'!r}.")
    host = parts.hostname
    if not host:
        raise ValueError(f"The push notification url {url!r} has no host.")
    if allow_private:
        return
    for address in _resolve(host):
        if not _is_public(address):
            raise ValueError(
                f"The push notification url {url!r} points at {address}, a loopback, private or otherwise non-public address; "
                "such targets are refused unless A2A_PUSH_ALLOW_PRIVATE=true."
            )


# ---- delivery -------------------------------------------------------------------------------

DELIVERED_KINDS = ("statusUpdate", "artifactUpdate", "message")
MAX_PENDING_EVENTS = 10_000  # across all tasks; beyond it new events are dropped with a warning
MAX_CONCURRENT_POSTS = 50
MAX_BACKOFF_S = 30.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DeliveryRefused(Exception):
    """The webhook cannot take this notification, and trying again would not help."""


def notification_headers(push_config: Json) -> dict[str, str]:
    """The headers a webhook uses to know the notification is genuine."""
    headers = {"Content-Type": "application/json"}
    if push_config.get("token"):
        headers["X-A2A-Notification-Token"] = str(push_config["token"])
    auth = push_config.get("authentication") or {}
    # 1.0 names one ``scheme``; configs written in 0.3 form name a list of ``schemes``.
    scheme = auth.get("scheme") or next(iter(auth.get("schemes") or []), "")
    if scheme and auth.get("credentials"):
        headers["Authorization"] = f"{scheme} {auth['credentials']}"
    return headers


class PushDelivery:
    """An event hook that POSTs each status, artifact and message event to the task's webhooks.

    The hook only queues the event and returns, so a slow or dead webhook never holds up
    the task. Each task's events are sent by one background sender, in order; each POST is
    retried with exponential backoff. Redirects are never followed (a public url must not
    bounce the server onto a private one), and the url is checked again before every POST
    because what a host name resolves to can change after the config was accepted.
    """

    def __init__(
        self,
        store: QueueStore,
        *,
        allow_private: bool = False,
        max_attempts: int = 5,
        timeout: float = 5.0,
        backoff: float = 0.5,
        max_pending: int = MAX_PENDING_EVENTS,
    ):
        self.store = store
        self.allow_private = allow_private
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.backoff = backoff
        self.max_pending = max_pending
        self.stats: Counter[str] = Counter()
        self._queues: dict[str, deque[tuple[Json, str | None]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._pending = 0
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_POSTS)

    @classmethod
    def from_config(cls, store: QueueStore, config: Config) -> PushDelivery:
        return cls(
            store,
            allow_private=config.push_allow_private,
            max_attempts=config.push_max_attempts,
            timeout=config.push_timeout,
            backoff=config.push_backoff,
        )

    async def __call__(self, record: TaskRecord, event: Json) -> None:
        # The write that recorded the event also said whether the task has push configs,
        # so tasks without any cost nothing here.
        if not record.has_push_configs or not any(kind in event for kind in DELIVERED_KINDS):
            return
        if self._pending >= self.max_pending:
            self.stats["dropped"] += 1
            log.warning("Push notification dropped: too many pending, task_id=%s, pending=%s", record.id, self._pending)
            return
        # The trace this event belongs to: the worker's current span, else the one stored with the task.
        self._queues.setdefault(record.id, deque()).append((event, tracing.current_traceparent() or record.trace))
        self._pending += 1
        if record.id not in self._senders:
            self._senders[record.id] = asyncio.create_task(self._send_in_order(record.id), name=f"push:{record.id}")

    @property
    def pending(self) -> int:
        return self._pending

    async def drain(self) -> None:
        """Wait until every queued notification was delivered or given up."""
        while self._senders:
            await asyncio.gather(*list(self._senders.values()), return_exceptions=True)

    async def aclose(self) -> None:
        for sender in list(self._senders.values()):
            sender.cancel()
        await asyncio.gather(*list(self._senders.values()), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send_in_order(self, task_id: str) -> None:
        queue = self._queues[task_id]
        try:
            while queue:
                try:
                    await self._deliver_event(task_id, *queue[0])
                except Exception:  # a broken webhook or Redis hiccup must not stop later events
                    log.exception("Push notification failed, task_id=%s", task_id)
                queue.popleft()
                self._pending -= 1
        finally:
            self._pending -= len(queue)
            del self._queues[task_id]
            del self._senders[task_id]

    async def _deliver_event(self, task_id: str, event: Json, trace: str | None) -> None:
        configs = await self.store.get_push_configs(task_id)
        if not configs:
            return
        body = model.dumps(event).encode()
        with tracing.span("a2a.push", parent=trace, kind="client", attributes={"a2a.task_id": task_id, "a2a.push.webhooks": len(configs)}):
            headers = {"traceparent": traceparent} if (traceparent := tracing.current_traceparent() or trace) else {}
            await asyncio.gather(*(self._deliver(task_id, push_config, body, headers) for push_config in configs.values()))

    async def _deliver(self, task_id: str, push_config: Json, body: bytes, extra_headers: dict[str, str]) -> None:
        import httpx

        url = str(push_config.get("url", ""))
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._post(url, push_config, body, extra_headers)
            except DeliveryRefused as exc:
                self.stats["refused"] += 1
                log.warning("Push notification refused, task_id=%s, url=%s, reason=%s", task_id, url, exc)
                return
            except (httpx.HTTPError, RetryableStatus) as exc:
                self.stats["failed_attempts"] += 1
                if attempt == self.max_attempts:
                    self.stats["given_up"] += 1
                    log.warning("Push notification given up after %s attempts, task_id=%s, url=%s, error=%s", attempt, task_id, url, exc)
                    return
                delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
                log.info("Push notification failed, retrying in %.1fs, task_id=%s, url=%s, attempt=%s, error=%s", delay, task_id, url, attempt, exc)
                await asyncio.sleep(delay)
            else:
                self.stats["delivered"] += 1
                return

    async def _post(self, url: str, push_config: Json, body: bytes, extra_headers: dict[str, str]) -> None:
        import httpx

        try:
            if self.allow_private:
                check_url(url, True)
            else:
                await asyncio.to_thread(check_url, url, False)
        except ValueError as exc:
            raise DeliveryRefused(str(exc)) from None
        async with self._slots:
            try:
                # httpx's timeout bounds each read, so a webhook answering a byte at a time would
                # never trip it: the whole exchange gets the same bound.
                async with asyncio.timeout(self.timeout):
                    response = await self._http().post(url, content=body, headers={**notification_headers(push_config), **extra_headers})
            except TimeoutError:
                raise httpx.TimeoutException(f"no complete answer within {self.timeout:g}s") from None
        if response.status_code in RETRY_STATUSES:
            raise RetryableStatus(f"HTTP {response.status_code}")
        if response.is_redirect:
            raise DeliveryRefused(f"HTTP {response.status_code} redirect to {response.headers.get('location', '?')!r} not followed")
        if not response.is_success:
            raise DeliveryRefused(f"HTTP {response.status_code}")

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)
        return self._client


class RetryableStatus(Exception):
    """The webhook answered with a status worth trying again (5xx, 429, 408)."""
