"""OpenTelemetry traces across the queue: endpoint, Redis, worker, push.

Configured by OpenTelemetry's own environment variables (``OTEL_TRACES_EXPORTER``,
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ``OTEL_SDK_DISABLED``...). Unconfigured,
nothing of OpenTelemetry is imported and every helper here returns at once.

The W3C trace context crosses the queue as a ``traceparent`` string: the endpoint's span
for the call that created a task is stored with the task (the ``trace`` field of its hash),
the worker continues that trace for the claim, the agent's run and every transition it
writes, and each push notification carries a ``traceparent`` header.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("queueapp.tracing")

EXPORTERS = ("otlp", "console", "none")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_NULL = contextlib.nullcontext()

_tracer: Any = None
_provider: Any = None


class TracingConfigError(ValueError):
    """An OTEL_* variable asks for something this server cannot do."""


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; empty when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not raw:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={raw!r} is invalid: expected a comma-separated list of {', '.join(EXPORTERS)}")
    return [name for name in names if name != "none"]


def setup(environ: Mapping[str, str] | None = None, exporters: list[Any] | None = None) -> bool:
    """Start tracing when the environment configures it (or with ``exporters``, for tests).

    Returns whether tracing is on. Raises :class:`TracingConfigError` with one line when a
    variable asks for what cannot be done (an unknown exporter, OTLP without its package).
    """
    global _tracer, _provider
    environ = os.environ if environ is None else environ
    if exporters is None:
        exporters = [_make_exporter(name, environ) for name in exporter_names(environ)]
    if not exporters:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or "a2a-redis-queue"})
    _provider = TracerProvider(resource=resource)
    for exporter in exporters:
        _provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = _provider.get_tracer("queueapp")
    trace.set_tracer_provider(_provider)
    log.info("Tracing on, service=%s, exporters=%s", resource.attributes.get("service.name"), ",".join(type(e).__name__ for e in exporters))
    return True


def _make_exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol != "http/protobuf":
        raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: expected 'http/protobuf'")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise TracingConfigError("OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install -r requirements-otlp.txt") from None
    return OTLPSpanExporter()


def shutdown() -> None:
    """Export what is pending and stop (at process exit)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


# ---- spans --------------------------------------------------------------------------------


def _context(traceparent: str | None) -> Any:
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def _kind(name: str) -> Any:
    from opentelemetry.trace import SpanKind

    return getattr(SpanKind, name.upper())


def span(name: str, *, parent: str | None = None, kind: str = "internal", attributes: Mapping[str, Any] | None = None, start_ms: int | None = None) -> Any:
    """A span as a context manager (the current one inside it); a no-op when tracing is off.

    ``parent`` is a stored ``traceparent`` to continue; without it the span is a child of
    the current one. An exception leaving it is recorded on it.
    """
    if _tracer is None:
        return _NULL
    start = start_ms * 1_000_000 if start_ms else None
    context = _context(parent) if parent else None
    return _tracer.start_as_current_span(name, context=context, kind=_kind(kind), attributes=dict(attributes or {}), start_time=start)


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, or None when there is none (or tracing is off)."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def header(headers: Mapping[str, str]) -> str | None:
    """A caller's ``traceparent`` header (HTTP headers or gRPC metadata, any case), if well formed
    and tracing is on."""
    if _tracer is None:
        return None
    value = headers.get("traceparent") or headers.get("Traceparent")
    return value.strip().lower() if value and _TRACEPARENT.match(value.strip().lower()) else None


def trace_id(traceparent: str | None) -> str | None:
    """The 32-hex trace id a ``traceparent`` names (what tracing back-ends search by)."""
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None
