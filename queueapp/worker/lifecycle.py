"""The worker process: claim loop, heartbeat, reaper, retention and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Sequence
from typing import Any

from queueapp import model, retention
from queueapp.agents.base import Agent
from queueapp.config import Config
from queueapp.connection import is_outage, redis_error_text
from queueapp.states import TaskState
from queueapp.store import Claim, Conflict, QueueStore, TaskNotFound
from queueapp.worker.runner import RunningTask, execute
from queueapp.worker.updater import EventHook, through_outage

log = logging.getLogger("queueapp.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # the first lets running tasks finish, a second hurries
WAIT_TIMEOUT_S = 1.0  # how long one BLMOVE blocks: the claim loop looks at the pause about this often
CANCEL_GRACE_S = 2.0  # how long an agent may take to notice a cancel before it is interrupted
STOP_RETRY_S = 0.5  # how often a stopping worker re-cancels a background loop that is still alive
# An id sits in the processing list only between a take and its lease (normally well under
# a millisecond); one still there after this is stranded. Its late lease, if any, is refused.
PROCESSING_GRACE_S = 5.0


class Worker:
    """Claims tasks from the queue and runs them, ``concurrency`` at a time.

    Reliability: ids move from the queue into the processing list with LMOVE/BLMOVE and
    are then leased (token + deadline) in one script. Leases are extended on every
    heartbeat; any worker's reaper puts back tasks whose lease ran out. Every write of a
    running task checks its token, so a worker that lost its lease cannot finish it.
    """

    def __init__(
        self,
        store: QueueStore,
        agent: Agent,
        config: Config,
        *,
        worker_id: str | None = None,
        hooks: list[EventHook] | None = None,
        run_maintenance: bool = True,
    ):
        self.store = store
        self.agent = agent
        self.config = config
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{model.new_id()[-8:]}"
        self.hooks = hooks or []
        self.run_maintenance = run_maintenance
        self.running: dict[str, RunningTask] = {}
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()  # a second stop request: no more grace for running tasks
        self._slot_free = asyncio.Event()
        self.started_ms = model.now_ms()
        self.processed = 0
        self._stop_requested: float | None = None  # the loop's time of the first stop request

    # ---- the main loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT, see :meth:`install_signal_handlers`)."""
        log.info("Worker started, worker_id=%s, agent=%s, concurrency=%s", self.id, self.agent.name, self.config.worker_concurrency)
        await self._heartbeat_once()
        background = [asyncio.create_task(self._heartbeat_loop(), name="heartbeat")]
        if self.run_maintenance:
            background.append(asyncio.create_task(self._maintenance_loop(), name="maintenance"))
        try:
            await self._claim_loop()
        finally:
            reachable = await self._drain()
            await stop_loops(background)
            if reachable:  # else it would wait out one more timeout: reapers prune a worker that stopped heartbeating
                with contextlib.suppress(Exception):
                    await self.store.remove_worker(self.id)
            log.info("Worker stopped, worker_id=%s, processed=%s", self.id, self.processed)

    def stop(self, *, now: bool = False) -> None:
        """Stop claiming; running tasks get the shutdown grace, or none with ``now``."""
        if now and not self.hurry.is_set():
            log.info("Worker stopping now: running tasks go back to the queue, worker_id=%s, running=%s", self.id, len(self.running))
            self.hurry.set()
        elif not self.stopping.is_set():
            log.info("Worker stopping: no new claims, waiting up to %gs for running tasks, worker_id=%s", self.config.worker_shutdown_grace, self.id)
        if self._stop_requested is None:
            self._stop_requested = asyncio.get_running_loop().time()
        self.stopping.set()
        self._slot_free.set()

    def grace_left(self) -> float:
        """Seconds left of the shutdown grace, which counts from the first stop request."""
        if self._stop_requested is None:
            return self.config.worker_shutdown_grace
        return max(0.0, self._stop_requested + self.config.worker_shutdown_grace - asyncio.get_running_loop().time())

    def stop_again(self) -> None:
        """A stop signal: the first lets running tasks finish within the grace, a second stops at once."""
        self.stop(now=self.stopping.is_set())

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.stop_again)

    async def _claim_loop(self) -> None:
        backoff = 0.1
        while not self.stopping.is_set():
            free = self._free_slots()
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                claims = await self._claim(free)
                backoff = 0.1
            except Exception as exc:
                if not is_outage(exc, os_errors=True):
                    raise
                log.warning("Redis unavailable while claiming, retrying in %.1fs, error=%s", backoff, redis_error_text(exc))
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.config.queue_reconnect_backoff_max)
                continue
            for claim in claims:
                self._start(claim)

    def _free_slots(self) -> int:
        """How many tasks to claim now: the concurrency less the tasks whose agent still runs.

        A task whose end is being written holds no slot while the write is in flight, so the
        next claim goes out while Redis records the ends of the last ones instead of after; at
        most as many ends as the concurrency wait at once (a slow or unreachable Redis stops
        the claims too).
        """
        concurrency = self.config.worker_concurrency
        agents = sum(1 for running in self.running.values() if not running.ending)
        return min(concurrency - agents, 2 * concurrency - len(self.running))

    async def _claim(self, free: int) -> list[Claim]:
        ids, remaining = await self.store.take(free)
        if remaining < 0:  # paused
            await self._sleep(WAIT_TIMEOUT_S)
            return []
        if not ids:
            task_id = await self._wait_take()
            if task_id is None:
                return []
            # Paused while this worker was blocked: the lease gives the id back (lease.lua).
            ids = [task_id]
            if log.isEnabledFor(logging.INFO):
                remaining = await self.store.queue_length()
        # The same tokens on every try: a retried lease whose first reply was lost returns the
        # claims it made, instead of leaving them to expire.
        # Compared, never parsed: no UUID needed. One read of the system's random source for the
        # batch, not one a task, then 32 hex digits (128 bits) each.
        random_hex = secrets.token_hex(16 * len(ids))
        tokens = {task_id: random_hex[32 * i : 32 * (i + 1)] for i, task_id in enumerate(ids)}
        claims = await through_outage(lambda _: self.store.lease(ids, self.id, self.config.worker_lease, tokens), self.config.worker_lease, "claiming tasks")
        for claim in claims:
            log.info("Task dequeued for processing, task_id=%s, remaining_queue_length=%s", claim.record.id, remaining)
        return claims

    async def _wait_take(self) -> str | None:
        """Block for the next waiting id (BLMOVE) until one comes, the wait times out or a stop.

        A stop does not wait out the blocking read: the shutdown grace counts from the signal,
        and an idle worker exits at once. Cancelling the read closes its connection. An id that
        Redis moved in the instant before is left in the processing list, as it would be by a
        worker killed at that moment: any worker's reaper returns it to the queue after
        PROCESSING_GRACE_S (with no worker running, the next one to start does).
        """
        # Within the socket timeout (A2A_QUEUE_OPTIONS_TIMEOUT, or the URL's ?socket_timeout=),
        # which redis-py does not stretch for a blocking command: a BLMOVE that outlasted it
        # would be cut as an outage, every time the queue stays empty that long.
        socket_timeout = self.store.redis.get_connection_kwargs().get("socket_timeout") or WAIT_TIMEOUT_S * 2
        take = asyncio.ensure_future(self.store.wait_take(min(WAIT_TIMEOUT_S, socket_timeout / 2)))
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait((take, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not take.done():
                take.cancel()
                await asyncio.wait((take,))  # its connection is closed before the next claim
            if not take.cancelled():
                take.exception()  # read: an error that ends the read as this one is cancelled is not reported as lost
        return None if take.cancelled() else take.result()

    def _start(self, claim: Claim) -> None:
        running = RunningTask(claim, on_ending=self._slot_free.set)
        self.running[claim.record.id] = running
        running.asyncio_task = asyncio.create_task(self._execute(running), name=f"task-{claim.record.id}")

    async def _execute(self, running: RunningTask) -> None:
        try:
            await execute(self.store, self.agent, running, self.config.task_timeout, self.hooks, self.config.worker_lease)
        except asyncio.CancelledError:
            pass
        finally:
            self.running.pop(running.claim.record.id, None)
            if not (running.returning or running.lost):  # given back or taken over: not processed here
                self.processed += 1
            self._slot_free.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # ---- shutdown ------------------------------------------------------------------------

    async def _drain(self) -> bool:
        """Let running tasks finish within the grace period; return the rest to the queue.

        They go back to the front of the queue newest first, so that the oldest is taken
        again first, as it was the first time. Returns False when Redis could not be reached
        to take them back: each is then left to its lease, which runs out, and any worker's
        reaper puts it back (as for a worker that was killed).
        """
        if not self.running:
            return True
        claimed = {task_id: order for order, task_id in enumerate(self.running)}  # oldest claim first
        pending = [r.asyncio_task for r in self.running.values() if r.asyncio_task]
        await until_done_or(pending, self.hurry, self.grace_left())  # counted from the stop request
        still = {task for task in pending if not task.done()}
        # Collect them first: a cancelled task leaves self.running as it ends.
        returning = [r for r in self.running.values() if r.asyncio_task in still]
        for running in returning:
            running.returning = True
            running.cancel_run()
        if still:
            await asyncio.wait(still, timeout=5)
        await self.store.settle_finishes()
        unfinished = returning + [r for r in list(self.running.values()) if not r.returning]
        unfinished.sort(key=lambda r: claimed.get(r.claim.record.id, len(claimed)), reverse=True)
        outage: str | None = None
        for running in unfinished:
            if outage is None:
                try:
                    # One Redis timeout for each give-back: a new connection to a frozen Redis
                    # can wait out several (connect, then its set-up commands) before it fails.
                    async with asyncio.timeout(self.config.queue_options_timeout):
                        await self._return_to_queue(running)
                except Exception as exc:
                    if not is_outage(exc, os_errors=True):  # OSError: TimeoutError, the timeout above, too
                        raise
                    # The others would each wait out the same timeout: they are not tried.
                    outage = redis_error_text(exc) if str(exc) else f"no answer within {self.config.queue_options_timeout:g}s"
            if outage is not None:
                log.warning(
                    "Task not returned to the queue: Redis unavailable, task_id=%s, error=%s; a reaper returns it once its lease runs out",
                    running.claim.record.id,
                    outage,
                )
        return outage is None

    async def _return_to_queue(self, running: RunningTask) -> None:
        claim = running.claim
        record = claim.record
        record.task["status"] = model.status(TaskState.SUBMITTED, model.now_ms(), model.agent_text("Returned to the queue: its worker shut down", record.id, record.context_id))
        try:
            # A graceful return does not count as a failed attempt.
            await self.store.update(record, model.status_event(record.task), token=claim.token, action="requeue_front", extra={"attempts": max(record.attempts - 1, 0)})
            log.info("Task requeued, task_id=%s, reason=worker shutdown", record.id)
        except (Conflict, TaskNotFound):
            pass

    # ---- heartbeat and cancellation ------------------------------------------------------

    async def _heartbeat_once(self) -> None:
        running = list(self.running.values())
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_ms": self.started_ms,
            "agent": self.agent.name,
            "concurrency": self.config.worker_concurrency,
            "tasks": [r.claim.record.id for r in running if not r.ending],  # an end being written holds no slot
            "processed": self.processed,
        }
        lost, cancel = await self.store.heartbeat(self.id, info, [r.claim for r in running], self.config.worker_lease)
        for task_id in lost:
            if task_id in self.running and self.running[task_id].asyncio_task:
                log.warning("Task lease lost to another worker, task_id=%s", task_id)
                self.running[task_id].lost = True
                self.running[task_id].cancel_run()
        for task_id, reason in cancel.items():
            if task_id in self.running:
                self._cancel(self.running[task_id], reason or "Canceled by request")

    def _cancel(self, running: RunningTask, reason: str) -> None:
        if running.cancel_reason:
            return
        running.cancel_reason = reason
        running.cancelled.set()
        log.info("Task cancel requested, task_id=%s", running.claim.record.id)

        def interrupt() -> None:
            if not running.done:
                running.cancel_run()

        asyncio.get_running_loop().call_later(CANCEL_GRACE_S, interrupt)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.worker_heartbeat_interval)
            try:
                await self._heartbeat_once()
            except Exception as exc:
                log.warning("Heartbeat failed, worker_id=%s, error=%s", self.id, redis_error_text(exc))

    # ---- maintenance: reaper and retention ----------------------------------------------

    async def _maintenance_loop(self) -> None:
        last_cleanup = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.config.worker_lease / 4))
            try:
                await reap(self.store, self.config)
                if loop.time() - last_cleanup >= self.config.queue_cleanup_interval:
                    last_cleanup = loop.time()
                    await retention.run_if_due(self.store, self.config)
            except Exception as exc:
                log.warning("Maintenance failed, worker_id=%s, error=%s", self.id, redis_error_text(exc))


async def stop_loops(loops: list[asyncio.Task[None]]) -> None:
    """Cancel the background loops and wait for them, cancelling again while any is still alive.

    A cancellation can be lost inside a Redis call on Python 3.11 (a timeout that expires as
    the cancel arrives), and one lost cancel must not keep a stopping process alive.
    """
    pending = set(loops)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=STOP_RETRY_S)


async def until_done_or(pending: Sequence[asyncio.Future[Any]], hurry: asyncio.Event, timeout: float) -> None:
    """Wait until every one of ``pending`` is done, ``hurry`` is set or ``timeout`` passes."""
    if not pending:
        return
    waiters = [asyncio.ensure_future(asyncio.wait(pending)), asyncio.ensure_future(hurry.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:  # cancelling a waiter leaves the pending tasks running
            waiter.cancel()


async def reap(store: QueueStore, config: Config) -> int:
    """Put back tasks whose worker stopped heartbeating; fail those out of attempts; forget dead workers."""
    await store.prune_dead_workers(config.worker_lease)
    returned = await store.recover_processing(min(config.worker_lease, PROCESSING_GRACE_S))
    for task_id in returned:
        log.warning("Task requeued, task_id=%s, reason=taken by a worker that died before claiming it", task_id)
    count = len(returned)
    # Each goes to the front of the queue: the latest lease first, so that the oldest is taken first.
    for task_id in reversed(await store.expired_leases()):
        record = await store.get(task_id)
        if record is None or record.finished:
            await store.drop_lease(task_id)
            continue
        try:
            if record.attempts >= config.worker_max_attempts:
                reason = f"Task failed after {record.attempts} attempts: its worker stopped responding each time"
                await store.finish_unclaimed(record, TaskState.FAILED, reason, lease_expired=True)
                log.warning("Task failed, task_id=%s, reason=%s", task_id, reason)
            else:
                text = f"Requeued: its worker stopped responding (attempt {record.attempts} of {config.worker_max_attempts})"
                record.task["status"] = model.status(TaskState.SUBMITTED, model.now_ms(), model.agent_text(text, record.id, record.context_id))
                await store.update(record, model.status_event(record.task), action="requeue_front", lease_expired=True)
                log.warning("Task requeued, task_id=%s, reason=lease expired, attempts=%s", task_id, record.attempts)
            count += 1
        except Conflict:
            # Its worker wrote in the meantime (it is alive after all), another reaper put it
            # back first, or a worker claimed it since: its lease is not the one that ran out.
            continue
    return count
