"""The agent card view: public, cacheable, and answered with 304 when the client has it.

The path says which shape: ``agent-card.json`` is the 1.0 card, ``agent.json`` (where
0.3-era clients look) the 0.3 card. An ``A2A-Version`` header naming either version wins.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from queueapp import config as config_module
from queueapp.protocol.card import card_body
from queueapp.protocol.transport import VERSION_HEADER, requested_version_or

# The card is built from the settings and the agent, both fixed for the life of the process.
STARTED = http_date(time.time())


def base_url(request: HttpRequest) -> str:
    """Where clients reach this server: A2A_PUBLIC_URL when set, else what the request used."""
    public = config_module.get().public_url
    return (public or request.build_absolute_uri("/")).rstrip("/")


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags



@require_safe
async def agent_card(request: HttpRequest, version: str = "1.0") -> HttpResponse:
    cfg = config_module.get()
    body, etag = card_body(cfg, base_url(request), requested_version_or(request, version))
    headers = {
        "ETag": etag,
        "Last-Modified": STARTED,
        "Cache-Control": f"public, max-age={int(cfg.card_max_age)}",
        "Vary": f"Host, {VERSION_HEADER}",
    }
    response = HttpResponse(status=304) if _matches(request.headers.get("If-None-Match", ""), etag) else HttpResponse(body, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response
