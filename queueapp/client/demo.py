"""The demo run: wait for the server, submit sample tasks, follow each to its end, report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

from queueapp.client.grpc_client import Client, make_client
from queueapp.client.progress import Display, Tracked, preview
from queueapp.client.rpc import ClientError

SAMPLE_TASKS = (
    "Generate financial report with Redis persistence",
    "Process customer data analysis",
    "Send notification emails to subscribers",
    "Create backup of critical system files",
    "Update inventory across multiple systems",
)


@dataclass
class Options:
    url: str = "http://127.0.0.1:8080"
    token: str | None = None
    count: int = len(SAMPLE_TASKS)
    text: str | None = None
    context: str | None = None
    stream: bool = False
    protocol: str = "1.0"
    transport: str = "jsonrpc"  # or grpc (1.0 only)
    health_attempts: int = 30
    poll_interval: float = 0.5
    task_timeout: float = 300.0


def plan(options: Options) -> list[Tracked]:
    """The tasks to submit: ``--text`` repeated, or the samples in turn; each in its own context unless ``--context``.

    A new context is left to the server to start (with auth on, it accepts no context id it
    did not give out), and the answer says which it is.
    """
    texts = [options.text] * options.count if options.text else [SAMPLE_TASKS[i % len(SAMPLE_TASKS)] for i in range(options.count)]
    return [Tracked(number=i + 1, text=text, context_id=options.context) for i, text in enumerate(texts)]


async def run_demo(options: Options, display: Display) -> list[Tracked]:
    """Run the whole demo and return every task as it ended."""
    async with make_client(options.url, transport=options.transport, protocol=options.protocol, token=options.token) as client:
        display.log(f"Waiting for the server, url={options.url}")
        await client.wait_healthy(
            options.health_attempts, on_retry=lambda attempt, why: display.log(f"Server not ready, attempt={attempt}/{options.health_attempts}, reason={why}")
        )
        display.log(f"Server is healthy, url={options.url}, protocol={options.protocol}, transport={options.transport}, mode={'stream' if options.stream else 'poll'}")
        tracked = plan(options)
        display.tracked = tracked
        async with _ticking(display):
            if options.stream:
                jobs = [(_stream_one(client, item, display), item) for item in tracked]
            else:
                for item in tracked:  # one at a time, so the log reads in order
                    await _bounded(_submit(client, item, display), item, options.task_timeout)
                jobs = [(_poll(client, item, display, options.poll_interval), item) for item in tracked if not item.error]
            await asyncio.gather(*(_bounded(job, item, options.task_timeout) for job, item in jobs))
        display.finish()
        for item in tracked:
            await _fill_in(client, item)
        return tracked


async def _bounded(job: Awaitable[None], item: Tracked, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await job
    except TimeoutError:
        item.error = f"no final state within {timeout:g}s (last state: {item.state.value})"
    except ClientError as exc:
        item.error = str(exc)


def _submitting(item: Tracked, display: Display) -> None:
    display.log(f"Submitting task to Redis queue, text={item.text!r}, context_id={item.context_id or '(new)'}")


def _submitted(item: Tracked, display: Display) -> None:
    display.log(f"Task submitted successfully, task_id={item.task_id}, context_id={item.context_id}")


async def _submit(client: Client, item: Tracked, display: Display) -> None:
    _submitting(item, display)
    result = await client.send(item.text, item.context_id)
    if "message" in result:  # answered at once with a message: nothing to follow
        item.apply_event(result)
        item.task_id = result["message"].get("taskId", "")
        item.context_id = result["message"].get("contextId", item.context_id)
        _submitted(item, display)
        return
    item.apply_task(result["task"])
    _submitted(item, display)
    display.update(item)


async def _poll(client: Client, item: Tracked, display: Display, interval: float) -> None:
    while not item.settled:
        await asyncio.sleep(interval)
        item.apply_task(await client.get_task(item.task_id))
        display.update(item)


async def _stream_one(client: Client, item: Tracked, display: Display) -> None:
    _submitting(item, display)
    async for event in client.stream(item.text, item.context_id):
        first = not item.task_id
        item.apply_event(event)
        if "message" in event:
            item.task_id = event["message"].get("taskId", item.task_id)
            item.context_id = event["message"].get("contextId", item.context_id)
        if first and item.task_id:
            _submitted(item, display)
        display.update(item)
        if item.settled:
            break
    if not item.task_id:
        raise ClientError("the stream ended before the server named the task")


async def _fill_in(client: Client, item: Tracked) -> None:
    """Read the final task once more for its history (a stream does not carry it)."""
    if not item.task_id or item.error:
        return
    with contextlib.suppress(ClientError):
        item.apply_task(await client.get_task(item.task_id))


@contextlib.asynccontextmanager
async def _ticking(display: Display) -> AsyncIterator[None]:
    async def tick() -> None:
        while True:
            await asyncio.sleep(0.2)
            display.tick()

    ticker = asyncio.create_task(tick()) if display.live else None
    try:
        yield
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


def report(tracked: list[Tracked], display: Display) -> int:
    """Print each task's outcome; return how many did not complete."""
    failures = 0
    for item in tracked:
        history = len((item.task or {}).get("history") or [])
        display.log(f"Task {item.number}/{len(tracked)} finished, task_id={item.task_id or '-'}, context_id={item.context_id}")
        display.out.write(f"  Task status: {item.state.value}\n")
        display.out.write(f"  History length: {history}\n")
        if item.reply:
            display.out.write(f"  Reply: {preview(item.reply)}\n")
        if item.error:
            display.out.write(f"  Error: {item.error}\n")
        failures += not item.ok
    return failures
