"""OpenTelemetry traces across the queue: one trace from the endpoint through Redis to the worker and its push."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from queueapp import tracing
from queueapp.protocol.handler import CallContext, Handler
from queueapp.services import Services
from tests.faults.tools import eventually, running_worker
from tests.support import ROOT, base_env, free_port, wait_until

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


# ---- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, []),
    ],
)
def test_the_standard_variables_choose_the_exporters(environ, names):
    assert tracing.exporter_names(environ) == names


def test_an_unknown_exporter_or_protocol_stops_the_command_with_one_line(redis_url, tmp_path):
    dot_env = tmp_path / ".env"
    dot_env.write_text("OTEL_TRACES_EXPORTER=jaeger\n")  # read from .env like the A2A_* settings
    for extra, message in [
        ({"A2A_ENV_FILE": str(dot_env)}, "CommandError: OTEL_TRACES_EXPORTER='jaeger' is invalid: expected a comma-separated list of otlp, console, none"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "CommandError: OTEL_TRACES_EXPORTER='zipkin' is invalid: expected a comma-separated list of otlp, console, none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "CommandError: OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported: expected 'http/protobuf'"),
    ]:
        result = subprocess.run([sys.executable, "manage.py", "runworker"], cwd=ROOT, env=base_env(redis_url, str(tmp_path), **extra), capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines()[-1] == message


def test_off_imports_no_sdk_and_adds_nothing(tmp_path):
    """Unconfigured, the endpoint and the worker run without OpenTelemetry's SDK loaded."""
    code = (
        "import django, sys; django.setup();"
        "import a2a_site.asgi, queueapp.worker, queueapp.push, dashboard.queries;"
        "from queueapp import tracing; assert not tracing.setup();"
        "assert tracing.span('x') is tracing.span('y');"  # the one shared no-op
        "assert tracing.current_traceparent() is None and tracing.header({'traceparent': '00-' + '1' * 32 + '-' + '2' * 16 + '-01'}) is None;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    env = {**base_env(None, str(tmp_path)), "DJANGO_SETTINGS_MODULE": "a2a_site.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_trace_id_reads_a_traceparent():
    assert tracing.trace_id(CALLER) == CALLER_TRACE
    assert tracing.trace_id("garbage") is None and tracing.trace_id(None) is None


# ---- one process, the SDK's in-memory exporter --------------------------------------------------


@pytest.fixture
def memory_spans():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.setup(environ={}, exporters=[exporter])
    yield exporter
    tracing.shutdown()


async def test_the_worker_continues_the_endpoints_trace(store, config, memory_spans):
    handler = Handler(Services(config, store))
    params = {"message": {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "chunks 2"}]}, "configuration": {"returnImmediately": True}}
    answer = await handler.call("SendMessage", params, CallContext(traceparent=CALLER))
    task_id = answer["task"]["id"]
    stored = await store.redis.hget(store.keys.active(task_id), "trace")
    assert tracing.trace_id(stored) == CALLER_TRACE  # the W3C context, kept with the task in Redis

    async with running_worker(store, config):
        await eventually(lambda: store.redis.exists(store.keys.deadletter(task_id)), message="the task to finish")
    tracing._provider.force_flush()
    spans = memory_spans.get_finished_spans()
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)

    assert {span.context.trace_id for span in spans} == {int(CALLER_TRACE, 16)}  # one trace
    [endpoint] = by_name["SendMessage"]
    assert endpoint.parent.span_id == int(CALLER_SPAN, 16)  # the caller's own trace goes on
    assert f"{endpoint.context.span_id:016x}" in stored
    [task] = by_name["a2a.task"]
    assert task.parent.span_id == endpoint.context.span_id and task.attributes["a2a.task_id"] == task_id
    [claim] = by_name["a2a.claim"]
    [run] = by_name["a2a.agent.run"]
    assert claim.parent.span_id == run.parent.span_id == task.context.span_id
    states = [span.attributes["a2a.task.state"] for span in sorted(by_name["a2a.transition"], key=lambda s: s.start_time)]
    assert states[-1] == "TASK_STATE_COMPLETED" and len(states) >= 3  # two artifact chunks, then the end


# ---- separate processes, over OTLP ----------------------------------------------------------


class Collector:
    """An OTLP/HTTP trace receiver on loopback: what a collector would get, span by span."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.port = free_port()
        self.spans: list[dict] = []
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource_spans in request.resource_spans:
                    service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            collector.spans.append(
                                {"service": service, "name": span.name, "trace": span.trace_id.hex(), "id": span.span_id.hex(), "parent": span.parent_span_id.hex()}
                            )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Receive)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self, service: str) -> dict[str, str]:
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}", "OTEL_SERVICE_NAME": service, "OTEL_BSP_SCHEDULE_DELAY": "100"}

    def names(self, service: str) -> list[str]:
        return [s["name"] for s in self.spans if s["service"] == service]


class Webhook:
    def __init__(self):
        self.port = free_port()
        self.headers: list[dict] = []
        hook = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.headers.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Receive)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_one_trace_spans_the_endpoint_a_separate_worker_and_the_push(processes, redis_url, redis_server):
    collector, webhook = Collector(), Webhook()
    try:
        server = processes.serve(redis_url, A2A_EMBEDDED_WORKERS="0", A2A_PUSH_ALLOW_PRIVATE="true", **collector.env("a2a-endpoint"))
        worker = processes.worker(redis_url, A2A_PUSH_ALLOW_PRIVATE="true", **collector.env("a2a-worker"))
        body = {
            "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
            "params": {
                "message": {"messageId": "m-otel", "role": "ROLE_USER", "parts": [{"text": "traced"}]},
                "configuration": {"returnImmediately": True, "taskPushNotificationConfig": {"url": f"http://127.0.0.1:{webhook.port}/hook"}},
            },
        }  # fmt: skip
        answer = httpx.post(f"{server.url}/a2a", json=body, headers={"A2A-Version": "1.0", "traceparent": CALLER}, timeout=30).json()
        task_id = answer["result"]["task"]["id"]
        wait_until(lambda: redis_server.client().exists(f"a2a:deadletter:{task_id}"), timeout=30, message="the worker to finish the task")
        wait_until(lambda: len(webhook.headers) >= 2, timeout=20, message="the push deliveries")
        wait_until(lambda: {"SendMessage"} <= set(collector.names("a2a-endpoint")) and "a2a.push" in collector.names("a2a-worker"), timeout=20, message="both processes' spans")
        time.sleep(0.5)  # the worker's last batch

        spans = [s for s in collector.spans if s["trace"] == CALLER_TRACE]
        [endpoint] = [s for s in spans if s["service"] == "a2a-endpoint" and s["name"] == "SendMessage"]
        assert endpoint["parent"] == CALLER_SPAN
        worker_spans = [s for s in spans if s["service"] == "a2a-worker"]
        [task] = [s for s in worker_spans if s["name"] == "a2a.task"]
        assert task["parent"] == endpoint["id"]  # the separate worker continues the endpoint's span
        assert {"a2a.claim", "a2a.agent.run", "a2a.transition", "a2a.push"} <= {s["name"] for s in worker_spans}
        assert all(s["trace"] == CALLER_TRACE for s in collector.spans if s["service"] == "a2a-worker")
        pushed = {tracing.trace_id(h.get("traceparent") or h.get("Traceparent")) for h in webhook.headers}
        assert pushed == {CALLER_TRACE}
        assert worker.stop() == 0 and server.stop() == 0

        page = _task_page(processes, server, redis_url, task_id)
        assert f'data-testid="trace-id">{CALLER_TRACE}<' in page
    finally:
        collector.server.shutdown()
        webhook.server.shutdown()


def _task_page(processes, server, redis_url: str, task_id: str) -> str:
    """The dashboard's task page, read anonymously (A2A_DASHBOARD_PUBLIC)."""
    public = processes.serve(redis_url, A2A_EMBEDDED_WORKERS="0", A2A_DASHBOARD_PUBLIC="true")
    return httpx.get(f"{public.url}/dashboard/tasks/{task_id}/", timeout=30).text
