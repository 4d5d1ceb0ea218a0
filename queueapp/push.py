"""Push notifications: which webhook urls are allowed, and delivering events to them.

A push config names a url the server will POST to from inside the deployment, so an
unchecked url lets any client make the server call its own private network (SSRF).
:func:`check_url` refuses anything that is not http(s) and, unless private targets are
allowed (``A2A_PUSH_ALLOW_PRIVATE``, for development and tests), any host that is or
resolves to a loopback, private, link-local or otherwise non-public address.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
