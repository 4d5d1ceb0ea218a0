"""The llm agent: answers with any OpenAI-compatible chat-completions endpoint.

The conversation sent to the model is the context's earlier messages plus this task's,
the newest ``A2A_AGENT_CLIENT_MAX_HISTORY`` of them, then the user's message. The reply
is streamed (``stream: true``, server-sent ``data:`` lines) and recorded as chunks of one
text artifact while it arrives, so streaming clients see it grow; the whole reply also
ends the task as the agent's message, which keeps it in the conversation for the next turn.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator

import httpx

from queueapp import model
from queueapp.agents.base import Agent, RunContext, TaskUpdater
from queueapp.config import Config
from queueapp.model import Json

ROLES = {"ROLE_USER": "user", "ROLE_AGENT": "assistant"}
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class LLMError(Exception):
    """The endpoint could not give a reply; the text is the reason the task fails with."""


def conversation(context: RunContext, max_history: int, system_prompt: str = "") -> list[Json]:
    """The chat messages for this turn: earlier text messages (at most ``max_history``), then the user's."""
    earlier = [*context.context_history, *context.history]
    current_id = context.message.get("messageId")
    earlier = [m for m in earlier if m.get("messageId") != current_id or not current_id]
    chat = [{"role": ROLES[m["role"]], "content": model.message_text(m)} for m in earlier if m.get("role") in ROLES and model.message_text(m)]
    chat = chat[-max_history:] if max_history else []
    prefix = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*prefix, *chat, {"role": "user", "content": context.text}]


def _error_text(body: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, or the start of the body."""
    try:
        data = model.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:300]
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message") or data["error"])[:300]
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:300]
    return body.decode(errors="replace").strip()[:300]


def _delta(line: str) -> str | None:
    """The text of one ``data:`` line; None for ``[DONE]``. Raises LLMError for an error object."""
    payload = line[len("data:") :].strip()
    if payload == "[DONE]":
        return None
    try:
        data = model.loads(payload)
    except ValueError:
        raise LLMError(f"The language model endpoint sent a line that is not JSON: {payload[:200]!r}") from None
    if not isinstance(data, dict):
        raise LLMError(f"The language model endpoint sent an unexpected event: {payload[:200]!r}")
    if data.get("error"):
        raise LLMError(f"The language model endpoint reported an error: {_error_text(payload.encode())}")
    choices = data.get("choices") or [{}]
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else ""


class LLMAgent(Agent):
    """Answers with an OpenAI-compatible chat-completions endpoint, streaming the reply."""

    name = "llm"
    description = "Answers with a language model, keeping the conversation of the context."
    chunk_chars = 200  # a chunk is recorded once this much text has arrived...
    chunk_interval = 0.25  # ...or this many seconds after the previous one
    system_prompt = ""  # a subclass may set one; it is sent before the conversation

    def __init__(self, config: Config | None = None):
        super().__init__(config)
        self.base_url = str(getattr(config, "agent_client_base_url", "https://api.openai.com/v1")).rstrip("/")
        self.api_key = str(getattr(config, "agent_client_api_key", ""))
        self.model = str(getattr(config, "agent_client_model", "gpt-4o-mini"))
        self.max_history = int(getattr(config, "agent_client_max_history", 20))

    async def run(self, context: RunContext, updater: TaskUpdater) -> None:
        try:
            reply = await self._stream_reply(context, updater)
        except LLMError as exc:
            await updater.fail(str(exc))
            return
        if context.cancelled.is_set():
            return
        if not reply:
            await updater.fail("The language model returned an empty reply")
            return
        await updater.complete(reply)

    async def _stream_reply(self, context: RunContext, updater: TaskUpdater) -> str:
        """Stream the reply into artifact chunks and return it whole."""
        artifact_id: str | None = None
        buffer, reply = "", []
        last_flush = time.monotonic()
        async with contextlib.aclosing(self._deltas(context)) as deltas:
            async for delta in deltas:
                buffer += delta
                reply.append(delta)
                if len(buffer) >= self.chunk_chars or time.monotonic() - last_flush >= self.chunk_interval:
                    artifact_id = await updater.artifact(
                        [{"text": buffer}], name="response", artifact_id=artifact_id, append=artifact_id is not None, last_chunk=False
                    )
                    buffer, last_flush = "", time.monotonic()
                if context.cancelled.is_set():
                    return "".join(reply)
        if buffer or artifact_id is not None:
            await updater.artifact([{"text": buffer}], name="response", artifact_id=artifact_id, append=artifact_id is not None, last_chunk=True)
        return "".join(reply)

    async def _deltas(self, context: RunContext) -> AsyncGenerator[str, None]:
        url = f"{self.base_url}/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": conversation(context, self.max_history, self.system_prompt), "stream": True}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as client, client.stream("POST", url, json=body, headers=headers) as response:
                if response.status_code != 200:
                    text = _error_text(await response.aread())
                    raise LLMError(f"The language model endpoint answered HTTP {response.status_code}: {text}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments and other SSE fields
                    delta = _delta(line)
                    if delta is None:
                        return
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise LLMError(f"Cannot reach the language model endpoint at {url}: {type(exc).__name__}: {exc}") from None
