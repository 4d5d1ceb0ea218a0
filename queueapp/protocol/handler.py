"""The request handler: one method per A2A RPC, on 1.0 JSON and the queue service.

Transports hand it validated 1.0 params (see ``codec``/``codec03``) and turn what it
returns, or the :class:`ProtocolError` it raises, into their own wire form. It never
sees HTTP or a protocol version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from queueapp import model, push, tracing
from queueapp.events import ends_stream, ends_subscription, follow_task
from queueapp.model import Json, TaskRecord
from queueapp.protocol import card, shutdown
from queueapp.protocol.access import Access
from queueapp.protocol.errors import (
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotFoundError,
    UnsupportedOperationError,
    from_store_error,
)
from queueapp.protocol.params import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    accepts_media_type,
    check_depth,
    parse_timestamp_ms,
    read_history_length,
    required_id,
    shape_task,
    status_time_ms,
)
from queueapp.services import Services
from queueapp.states import TERMINAL, TaskState
from queueapp.store import StoreError, valid_cursor

T = TypeVar("T")


@dataclass
class CallContext:
    """Who is calling: the identity their credential names, if auth is on, and the caller's
    W3C ``traceparent``, if tracing is on and they sent one."""

    identity: str | None = None
    traceparent: str | None = None


class Handler:
    def __init__(self, services: Services):
        self.services = services
        self.store = services.store
        self.config = services.config
        self.cap = self.config.max_history_length
        self.access = Access.from_config(self.config)

    async def _call(self, coro: Awaitable[T]) -> T:
        """Await a store call, translating its errors into the protocol's."""
        try:
            return await coro
        except StoreError as exc:
            raise from_store_error(exc) from None

    async def _task(self, task_id: str, ctx: CallContext) -> TaskRecord:
        """The task, if the caller may see it: another's task is answered as a missing one.

        The owner is checked before the task is read: read whole, another's task would be
        answered later than a missing one, the more so the larger it is.
        """
        if not self.access.sees_all(ctx.identity) and await self.store.task_owner(task_id) != ctx.identity:
            raise TaskNotFoundError(f"Task {task_id} was not found.")
        record = await self.store.get(task_id)
        if record is None or not self.access.may_see(ctx.identity, record.identity):
            raise TaskNotFoundError(f"Task {task_id} was not found.")
        return record

    # ---- sending ---------------------------------------------------------------------------

    def _check_message(self, params: Json) -> Json:
        message = params.get("message")
        if not isinstance(message, dict):
            raise InvalidParamsError("'message' is required: the user message to send.")
        if not message.get("messageId"):
            raise InvalidParamsError("message.messageId is required: a unique id chosen by the client.")
        if message.get("role") != "ROLE_USER":
            raise InvalidParamsError("message.role must be ROLE_USER ('user' in 0.3).")
        parts = message.get("parts") or []
        if not parts:
            raise InvalidParamsError("message.parts must hold at least one part.")
        if len(parts) > self.config.max_parts:
            raise InvalidParamsError(f"message has {len(parts)} parts; at most {self.config.max_parts} are accepted (A2A_MAX_PARTS).")
        accepted = card.agent_profile(self.config).input_modes
        check_depth({"metadata": params.get("metadata"), "message.metadata": message.get("metadata")})
        for index, part in enumerate(parts):
            if not any(key in part for key in ("text", "raw", "url", "data")):
                raise InvalidParamsError(f"message.parts[{index}] has no content: set one of text, raw, url or data.")
            check_depth({f"message.parts[{index}].data": part.get("data"), f"message.parts[{index}].metadata": part.get("metadata")})
            media_type = part.get("mediaType")
            if media_type and not accepts_media_type(accepted, media_type):
                raise ContentTypeNotSupportedError(f"message.parts[{index}] is {media_type}; this agent accepts {', '.join(accepted)}.")
        return message

    async def _submit(self, params: Json, ctx: CallContext) -> tuple[TaskRecord, str, bool]:
        """Create the task, or continue the input-required task the message names.

        Returns the record, the event id to follow from, and whether the caller should
        start with a snapshot of the task (a continued task) or read it from the events.
        """
        message = self._check_message(params)
        configuration = params.get("configuration") or {}
        push_config = configuration.get("taskPushNotificationConfig")
        if push_config and not self.config.capabilities_push_notifications:
            raise PushNotificationNotSupportedError()
        if push_config:
            await self._check_push_url(push_config)
        task_id, context_id = message.get("taskId"), message.get("contextId")
        if task_id:
            record = await self._continue(task_id, context_id, message, ctx)
            after, snapshot = await self.store.last_event_id(task_id), True
            if push_config:
                await self._store_push_config({**push_config, "taskId": task_id}, ctx)
            record = await self._call(self.store.continue_task(task_id, message))
        else:
            # The push config is stored before the task is queued, so that a fast worker's
            # first event is already pushed.
            new_id = model.new_id()
            stored = await self._store_push_config({**push_config, "taskId": new_id}, ctx) if push_config else None
            try:
                # With auth on, contexts are the server's: a message may name only one of the
                # caller's own (the spec: refuse a contextId it cannot accept, never swap in a new one).
                record, created = await self._call(
                    self.store.create_task(
                        message,
                        task_id=new_id,
                        context_id=context_id,
                        identity=ctx.identity,
                        metadata=params.get("metadata"),
                        context_must_exist=ctx.identity is not None and bool(context_id),
                        trace=tracing.current_traceparent(),
                    )
                )
            except BaseException:
                if stored:  # a refused message stores nothing: no task would ever own the config
                    with contextlib.suppress(Exception):  # Redis down: the create's own error is the answer
                        await asyncio.shield(self.store.delete_push_config(new_id, stored["id"]))
                raise
            if stored and not created:  # a repeated message id: the config belongs to the first task
                await self.store.delete_push_config(new_id, stored["id"])
                await self._store_push_config({**stored, "taskId": record.id}, ctx)
            after, snapshot = "0-0", False
        return record, after, snapshot

    async def _continue(self, task_id: str, context_id: str | None, message: Json, ctx: CallContext) -> TaskRecord:
        record = await self._task(task_id, ctx)
        if context_id and context_id != record.context_id:
            raise InvalidParamsError(f"message.contextId {context_id} contradicts task {task_id}, which belongs to context {record.context_id}.")
        if record.finished or record.state in TERMINAL:
            raise UnsupportedOperationError(
                f"Task {task_id} is {record.state.value}; it takes no more messages. Send the message without taskId to start a new task."
            )
        if not record.state.is_interrupted:
            raise UnsupportedOperationError(f"Task {task_id} is {record.state.value}; messages are accepted only while it waits for input.")
        return record

    async def _wait(self, task_id: str, after: str, timeout: float) -> Json | None:
        """The event that ends the task's run (terminal, interrupted or a direct reply), or
        None on timeout or when the server ends its waits to shut down (shutdown.py)."""
        with shutdown.wait_until_shutdown() as ended:
            waiting = asyncio.ensure_future(self._run_end(task_id, after))
            stopping = asyncio.ensure_future(ended.wait())
            try:
                await asyncio.wait((waiting, stopping), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not waiting.done():
                    waiting.cancel()
                    await asyncio.wait((waiting,))  # its event follower is closed before the answer
            return None if waiting.cancelled() else waiting.result()

    async def _run_end(self, task_id: str, after: str) -> Json | None:
        async with aclosing(follow_task(self.services.notices(), task_id, after)) as events:
            async for _, event in events:
                if ends_stream(event):
                    return event
        return None

    async def send_message(self, params: Json, ctx: CallContext) -> Json:
        record, after, _ = await self._submit(params, ctx)
        configuration = params.get("configuration") or {}
        history_length = read_history_length(configuration, self.cap)
        settled = record.finished or record.state.is_interrupted
        if not configuration.get("returnImmediately") and not settled:
            event = await self._wait(record.id, after, self.config.blocking_timeout)
            if event is not None and "message" in event:
                return {"message": event["message"]}
            record = await self._task(record.id, ctx)
        return {"task": shape_task(record.task, history_length, self.cap)}

    def _require_streaming(self) -> None:
        if not self.config.capabilities_streaming:
            raise UnsupportedOperationError("Streaming is not enabled on this agent (A2A_CAPABILITIES_STREAMING=false).")

    async def stream_message(self, params: Json, ctx: CallContext) -> AsyncGenerator[Json, None]:
        """Validate and submit now (errors come before any event), then stream."""
        self._require_streaming()
        record, after, snapshot = await self._submit(params, ctx)
        first = shape_task(record.task, None, self.cap) if snapshot or record.finished else None
        return self._events(record.id, first, after)

    async def subscribe(self, params: Json, ctx: CallContext) -> AsyncGenerator[Json, None]:
        self._require_streaming()
        task_id = required_id(params, "id")
        after = await self.store.last_event_id(task_id)  # read first: an event may repeat, none is lost
        record = await self._task(task_id, ctx)
        if record.finished or record.state in TERMINAL:
            raise UnsupportedOperationError(f"Task {task_id} is already {record.state.value}; there is nothing to subscribe to.")
        # Unlike a send's stream, a subscription follows the task through input-required
        # to its terminal state (the spec's SubscribeToTask ends there).
        return self._events(task_id, shape_task(record.task, None, self.cap), after, ends=ends_subscription)

    async def _events(self, task_id: str, first: Json | None, after: str, ends: Callable[[Json], bool] = ends_stream) -> AsyncGenerator[Json, None]:
        if first is not None:
            yield {"task": first}
            if ends({"task": first}):
                return
        async with aclosing(follow_task(self.services.notices(), task_id, after)) as events:
            async for _, event in events:
                yield event
                if ends(event):
                    return

    # ---- reading ---------------------------------------------------------------------------

    async def get_task(self, params: Json, ctx: CallContext) -> Json:
        task_id, history_length = required_id(params, "id"), read_history_length(params, self.cap)
        record = await self._task(task_id, ctx)
        return shape_task(record.task, history_length, self.cap)

    async def list_tasks(self, params: Json, ctx: CallContext) -> Json:
        page_size = params.get("pageSize", DEFAULT_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidParamsError(f"pageSize must be from 1 to {MAX_PAGE_SIZE}, not {page_size}.")
        status = params.get("status")
        state = TaskState.parse(status) if status and status != "TASK_STATE_UNSPECIFIED" else None
        token = params.get("pageToken", "")
        if token and not valid_cursor(token):
            raise InvalidParamsError(f"pageToken {token!r} was not issued by this server; pass the nextPageToken of the previous page.")
        after_ms = parse_timestamp_ms(params["statusTimestampAfter"]) if params.get("statusTimestampAfter") else None
        context_id = params.get("contextId") or None
        owner = self.access.scope(ctx.identity)
        page = await self.store.list_tasks(state=state, context_id=context_id, cursor=token, limit=page_size, owner=owner)
        items, next_token, total = page.items, page.next_cursor, page.total
        if after_ms is not None:
            kept = [r for r in items if status_time_ms(r) > after_ms]
            if len(kept) < len(items):
                next_token = ""  # newest first: everything after the first older task is older too
            items = kept
            total = await self._count_after(state, context_id, after_ms, owner)
        history_length = read_history_length(params, self.cap)
        include_artifacts = bool(params.get("includeArtifacts"))
        tasks = [shape_task(r.task, history_length, self.cap, include_artifacts) for r in items]
        return {"tasks": tasks, "nextPageToken": next_token, "pageSize": page_size, "totalSize": total}

    async def _count_after(self, state: TaskState | None, context_id: str | None, after_ms: int, owner: str | None) -> int:
        """How many tasks changed after the time: read pages newest first until an older one."""
        count, cursor = 0, ""
        while True:
            page = await self.store.list_tasks(state=state, context_id=context_id, cursor=cursor, limit=MAX_PAGE_SIZE, owner=owner)
            newer = [r for r in page.items if status_time_ms(r) > after_ms]
            count += len(newer)
            if len(newer) < len(page.items) or not page.next_cursor:
                return count
            cursor = page.next_cursor

    # ---- canceling -------------------------------------------------------------------------

    async def cancel_task(self, params: Json, ctx: CallContext) -> Json:
        task_id = required_id(params, "id")
        await self._task(task_id, ctx)
        after = await self.store.last_event_id(task_id)
        record = await self._call(self.store.request_cancel(task_id))
        if not record.finished:
            # A worker holds it: give the worker a moment to stop, then end it without it.
            if await self._wait(task_id, after, self.config.cancel_wait) is None:
                await self._call(self.store.force_cancel(task_id))
            record = await self._task(task_id, ctx)
        return shape_task(record.task, None, self.cap)

    # ---- push notification configs ---------------------------------------------------------

    def _require_push(self) -> None:
        if not self.config.capabilities_push_notifications:
            raise PushNotificationNotSupportedError("Push notifications are not enabled on this agent (A2A_CAPABILITIES_PUSH_NOTIFICATIONS=false).")

    async def _check_push_url(self, config: Json) -> None:
        try:
            # check_url resolves the host name: keep that lookup off the event loop.
            await asyncio.to_thread(push.check_url, config.get("url", ""), self.config.push_allow_private)
        except ValueError as exc:
            raise InvalidParamsError(str(exc)) from None

    async def _store_push_config(self, config: Json, ctx: CallContext) -> Json:
        """Store a config, owned by the caller; returns it as the client sees it."""
        stored = {key: value for key, value in config.items() if key in ("id", "taskId", "url", "token", "authentication") and value}
        stored["id"] = stored.get("id") or model.new_id()
        if not await self.store.set_push_config(stored["taskId"], stored["id"], stored, owner=ctx.identity):
            raise InvalidParamsError(f"Push notification config id {stored['id']!r} is in use on task {stored['taskId']}; choose another id.")
        return stored

    async def _push_configs(self, task_id: str, ctx: CallContext) -> dict[str, Json]:
        """The task's configs the caller may see; the task itself must be visible to it."""
        await self._task(task_id, ctx)
        return self.access.visible_configs(ctx.identity, await self.store.get_push_configs(task_id))

    async def create_push_config(self, params: Json, ctx: CallContext) -> Json:
        self._require_push()
        task_id = required_id(params, "taskId")
        await self._task(task_id, ctx)  # first: a task the caller cannot see gets 404 whatever the config
        await self._check_push_url(params)
        return await self._store_push_config(params, ctx)

    async def get_push_config(self, params: Json, ctx: CallContext) -> Json:
        self._require_push()
        task_id = required_id(params, "taskId")
        configs = await self._push_configs(task_id, ctx)
        config_id = params.get("id") or next(iter(configs), "")
        if config_id not in configs:
            raise TaskNotFoundError(f"Task {task_id} has no push notification config {config_id!r}.")
        return configs[config_id]

    async def list_push_configs(self, params: Json, ctx: CallContext) -> Json:
        self._require_push()
        task_id = required_id(params, "taskId")
        return {"configs": list((await self._push_configs(task_id, ctx)).values()), "nextPageToken": ""}

    async def delete_push_config(self, params: Json, ctx: CallContext) -> None:
        self._require_push()
        task_id = required_id(params, "taskId")
        configs = await self._push_configs(task_id, ctx)
        config_id = params.get("id")
        if not config_id:
            raise InvalidParamsError("'id' is required: the id of the push notification config.")
        if config_id in configs:  # another's config is left alone, answered like a missing one
            await self.store.delete_push_config(task_id, config_id)

    async def get_extended_card(self, params: Json, ctx: CallContext) -> Json:
        raise ExtendedAgentCardNotConfiguredError("This agent has no extended agent card; the public card at /.well-known/agent-card.json is complete.")

    # ---- dispatch --------------------------------------------------------------------------

    async def call(self, method: str, params: Json, ctx: CallContext) -> Any:
        """Run a unary 1.0 method by name (in a span of its own when tracing is on)."""
        with tracing.span(method, parent=ctx.traceparent, kind="server", attributes={"rpc.system": "a2a", "rpc.method": method}):
            return await getattr(self, UNARY[method])(params, ctx)

    async def open_stream(self, method: str, params: Json, ctx: CallContext) -> AsyncGenerator[Json, None]:
        """Open a stream; the span covers opening it (the submission), not its whole life."""
        with tracing.span(method, parent=ctx.traceparent, kind="server", attributes={"rpc.system": "a2a", "rpc.method": method}):
            if method == "SendStreamingMessage":
                return await self.stream_message(params, ctx)
            return await self.subscribe(params, ctx)


UNARY = {
    "SendMessage": "send_message",
    "GetTask": "get_task",
    "ListTasks": "list_tasks",
    "CancelTask": "cancel_task",
    "CreateTaskPushNotificationConfig": "create_push_config",
    "GetTaskPushNotificationConfig": "get_push_config",
    "ListTaskPushNotificationConfigs": "list_push_configs",
    "DeleteTaskPushNotificationConfig": "delete_push_config",
    "GetExtendedAgentCard": "get_extended_card",
}
