"""The agent card view: public, cacheable, and answered with 304 when the client has it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from queueapp import config as config_module
from queueapp.protocol.card import card_body


def base_url(request: HttpRequest) -> str:
    """Where clients reach this server: A2A_PUBLIC_URL when set, else what the request used."""
    public = config_module.get().public_url
    return (public or request.build_absolute_uri("/")).rstrip("/")


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@require_safe
async def agent_card(request: HttpRequest) -> HttpResponse:
    cfg = config_module.get()
    body, etag = card_body(cfg, base_url(request))
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={int(cfg.card_max_age)}", "Vary": "Host"}
    response = HttpResponse(status=304) if _matches(request.headers.get("If-None-Match", ""), etag) else HttpResponse(body, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response
