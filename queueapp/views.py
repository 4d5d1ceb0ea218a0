"""Plain HTTP views of the queue service that are not part of the A2A protocol."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, JsonResponse

from queueapp.connection import redis_error_text
from queueapp.services import get_store

HEALTH_TIMEOUT_S = 2.0


async def health(request: HttpRequest) -> JsonResponse:
    """200 ``{"status":"healthy"}`` when Redis answers, else 503 with the reason."""
    try:
        store = await asyncio.wait_for(get_store(), HEALTH_TIMEOUT_S)
        await asyncio.wait_for(store.ping(), HEALTH_TIMEOUT_S)
    except Exception as exc:
        reason = "Redis did not answer in time" if isinstance(exc, TimeoutError) else f"Redis unavailable: {redis_error_text(exc)}"
        return JsonResponse({"status": "unhealthy", "reason": reason}, status=503)
    return JsonResponse({"status": "healthy"})
