"""Requests made in one turn of the event loop, sent together by one call.

A worker finishes many tasks at once. Sent one script call each, every finish pays the
call's own overhead and writes the bookkeeping the finishes share (counts, the minute's
stats, the queue length of the notices) once per task. :class:`ItemBatch` gathers the items added in
the same turn of the loop and hands them to one ``send`` at the end of the turn; each
caller awaits its own result (a result that is an exception is raised to its caller
alone), and every caller of a batch whose send failed gets the error. A caller that awaits
before adding its next item keeps its order. The automatic pipeline (pipelining.py) is one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class ItemBatch(Generic[ItemT, ResultT]):
    def __init__(self, send: Callable[[list[ItemT]], Awaitable[list[ResultT]]]):
        self._send = send
        self._pending: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def add(self, item: ItemT) -> ResultT:
        """Send ``item`` with the others added in this turn; its result, or the batch's error."""
        return await self.submit(item)

    def submit(self, item: ItemT) -> asyncio.Future[ResultT]:
        """Like :meth:`add`, as a future (many items gathered cost no task each)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return future

    async def settle(self) -> None:
        """Return once every item added so far has been sent and answered."""
        while self._pending or self._sending:
            if self._sending:
                await asyncio.wait(set(self._sending))
            else:
                await asyncio.sleep(0)  # the flush is due at the end of this turn

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._sending.add(task)  # keep a reference until it is done
        task.add_done_callback(self._sending.discard)

    async def _run(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._send([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if len(results) != len(batch):
            error = RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
