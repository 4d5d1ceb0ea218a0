"""The llm agent against a small OpenAI-compatible endpoint started on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from queueapp import model
from queueapp.agents import load_agent
from queueapp.agents.llm import LLMAgent
from queueapp.states import TaskState
from tests.support import free_port
from tests.test_agents_conformance import agent_events, running_worker, wait_for_state


class FakeChatEndpoint:
    """``POST /v1/chat/completions`` that streams scripted deltas and records each request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.replies: list[list[str]] = []  # one list of deltas per request; then "ok"
        self.status = 200
        self.error_body = b""
        self.raw_lines: list[str] | None = None  # sent instead of the deltas when set
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if endpoint.status != 200:
                    self.send_response(endpoint.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(endpoint.error_body)))
                    self.end_headers()
                    self.wfile.write(endpoint.error_body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                deltas = endpoint.replies.pop(0) if endpoint.replies else ["ok"]
                lines = endpoint.raw_lines
                if lines is None:
                    first = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
                    chunks = [{"choices": [{"index": 0, "delta": {"content": d}}]} for d in deltas]
                    lines = [f"data: {json.dumps(c)}" for c in [first, *chunks]] + [": keep-alive", "data: [DONE]"]
                for line in lines:
                    self.wfile.write(f"{line}\n\n".encode())
                    self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[FakeChatEndpoint]:
    fake = FakeChatEndpoint()
    yield fake
    fake.close()


@pytest.fixture
def llm_config(config, endpoint):
    return config.replace(agent_client_base_url=endpoint.base_url, agent_client_api_key="sk-test", agent_client_model="tiny-model", agent_client_max_history=20)


def llm_agent(cfg) -> LLMAgent:
    agent = load_agent("llm", cfg)
    assert isinstance(agent, LLMAgent)
    agent.chunk_chars = 1  # record every delta as its own chunk, so the test can count them
    return agent


async def ask(store, cfg, text: str, context_id: str | None = None):
    record, _ = await store.create_task(model.message("user", [model.text_part(text)]), context_id=context_id)
    async with running_worker(store, cfg, llm_agent(cfg)):
        return await wait_for_state(store, record.id)


async def test_reply_is_streamed_as_artifact_chunks(store, llm_config, endpoint):
    endpoint.replies = [["Hello", ", ", "world"]]
    done = await ask(store, llm_config, "Say hello")

    assert done.state is TaskState.COMPLETED
    assert model.message_text(done.task["status"]["message"]) == "Hello, world"
    updates = [e["artifactUpdate"] for e in await agent_events(store, done.id) if "artifactUpdate" in e]
    assert [u["artifact"]["parts"][0]["text"] for u in updates] == ["Hello", ", ", "world", ""]
    assert [u["append"] for u in updates] == [False, True, True, True]
    assert [u["lastChunk"] for u in updates] == [False, False, False, True]
    assert len({u["artifact"]["artifactId"] for u in updates}) == 1
    assert "".join(p["text"] for p in done.task["artifacts"][0]["parts"]) == "Hello, world"

    [request] = endpoint.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {"model": "tiny-model", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}


async def test_the_context_history_is_the_conversation(store, llm_config, endpoint):
    endpoint.replies = [["Nice to meet you, Ada."], ["Your name is Ada."]]
    first = await ask(store, llm_config, "My name is Ada.")
    second = await ask(store, llm_config, "What is my name?", context_id=first.context_id)

    assert model.message_text(second.task["status"]["message"]) == "Your name is Ada."
    assert endpoint.requests[1]["body"]["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


async def test_max_history_keeps_only_the_newest_messages(store, llm_config, endpoint):
    cfg = llm_config.replace(agent_client_max_history=1)
    endpoint.replies = [["First answer."], ["Second answer."]]
    first = await ask(store, cfg, "First question.")
    await ask(store, cfg, "Second question.", context_id=first.context_id)
    assert endpoint.requests[1]["body"]["messages"] == [
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Second question."},
    ]


async def test_no_api_key_sends_no_authorization(store, llm_config, endpoint):
    await ask(store, llm_config.replace(agent_client_api_key=""), "hi")
    assert "Authorization" not in endpoint.requests[0]["headers"]


async def test_an_http_error_fails_the_task_with_the_endpoints_reason(store, llm_config, endpoint):
    endpoint.status = 401
    endpoint.error_body = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}).encode()
    done = await ask(store, llm_config, "hi")
    assert done.state is TaskState.FAILED
    assert done.error == "The language model endpoint answered HTTP 401: Incorrect API key provided"


async def test_an_error_in_the_stream_fails_the_task(store, llm_config, endpoint):
    endpoint.raw_lines = ['data: {"choices":[{"delta":{"content":"par"}}]}', 'data: {"error":{"message":"model overloaded"}}']
    done = await ask(store, llm_config, "hi")
    assert done.state is TaskState.FAILED
    assert "model overloaded" in done.error


async def test_a_line_that_is_not_json_fails_the_task(store, llm_config, endpoint):
    endpoint.raw_lines = ["data: {not json"]
    done = await ask(store, llm_config, "hi")
    assert done.state is TaskState.FAILED
    assert "not JSON" in done.error


async def test_an_empty_reply_fails_the_task(store, llm_config, endpoint):
    endpoint.replies = [[]]
    done = await ask(store, llm_config, "hi")
    assert done.state is TaskState.FAILED
    assert done.error == "The language model returned an empty reply"


async def test_an_unreachable_endpoint_fails_the_task(store, llm_config):
    cfg = llm_config.replace(agent_client_base_url=f"http://127.0.0.1:{free_port()}/v1")
    done = await ask(store, cfg, "hi")
    assert done.state is TaskState.FAILED
    assert done.error.startswith("Cannot reach the language model endpoint at http://127.0.0.1:")


def test_settings_configure_the_agent(make_config):
    agent = load_agent("llm", make_config(A2A_AGENT_CLIENT_BASE_URL="http://models.local:8000/v1/", A2A_AGENT_CLIENT_MODEL="m", A2A_AGENT_CLIENT_MAX_HISTORY="4"))
    assert (agent.base_url, agent.model, agent.max_history) == ("http://models.local:8000/v1", "m", 4)


def test_a_bad_base_url_is_a_config_error(make_config):
    from queueapp.config import ConfigError

    with pytest.raises(ConfigError, match="A2A_AGENT_CLIENT_BASE_URL"):
        make_config(A2A_AGENT_CLIENT_BASE_URL="models.local/v1")
