"""What a process needs before it serves or works: its configuration, its logging, its store.

Free of Django, so that a worker can start without it (``queueapp/worker/command.py``);
the management commands turn a :class:`StartError` into Django's one-line CommandError.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from queueapp import config as config_module
from queueapp import tracing
from queueapp.connection import RedisUnavailable, connect, redis_error_text
from queueapp.store import QueueStore
from queueapp.store.pipelining import install_fast_packer


class StartError(Exception):
    """The process cannot start: one line for the operator, naming what to fix."""


def load_config(**overrides: Any) -> config_module.Config:
    """The validated configuration with the command line's overrides, or a StartError naming the bad variable."""
    try:
        config_module.set_current(None)
        cfg = config_module.get()
    except config_module.ConfigError as exc:
        raise StartError(str(exc)) from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    for name, value in changes.items():  # held to what the variable of the same name takes
        setting = next(s for s in config_module.SETTINGS.values() if s.name == name)
        if not setting.check(value):
            raise StartError(f"{setting.env}={value!r} (from the command line) is invalid: expected {setting.accepts}")
    if changes:
        before = cfg
        cfg = cfg.replace(**changes)
        if before.allowed_hosts == config_module.default_allowed_hosts(before.public_url, before.server_host):
            # The default names the host served on: follow --host as it follows A2A_SERVER_HOST.
            cfg = cfg.replace(allowed_hosts=config_module.default_allowed_hosts(cfg.public_url, cfg.server_host))
        config_module.set_current(cfg)
    logging.getLogger("queueapp").setLevel(logging.DEBUG if cfg.debug else logging.INFO)
    return cfg


async def open_store(cfg: config_module.Config, *, check_policy: bool = True) -> QueueStore:
    """The process's store on a new connection.

    From here on the process's asyncio Redis connections (the Channels layer's too) pack
    commands with hiredis: a process-wide change, so it is made here, as a process
    starts, rather than when some module happens to be imported.
    """
    install_fast_packer()
    try:
        client = await connect(cfg, check_policy=check_policy)
    except RedisUnavailable as exc:
        raise StartError(redis_error_text(exc, cfg)) from None
    return QueueStore.from_config(client, cfg)


@contextlib.contextmanager
def tracing_on() -> Iterator[None]:
    """Tracing as OTEL_* configures it, for the process's life; a bad OTEL_* value is a StartError.

    OTEL_* lines of ``.env`` count too (the environment wins), as the A2A_* ones do: the SDK
    and its exporter read only the process environment, so they are copied there.
    """
    try:
        env_file = config_module.load_env_file()
    except config_module.ConfigError as exc:
        raise StartError(str(exc)) from None
    for name, value in env_file.items():
        if name.startswith("OTEL_"):
            os.environ.setdefault(name, value)
    try:
        tracing.setup()
    except tracing.TracingConfigError as exc:
        raise StartError(str(exc)) from None
    try:
        yield
    finally:
        tracing.shutdown()  # exports the spans still pending


class PlainFormatter(logging.Formatter):
    """logging's own formatter, with the date and time formatted once per second, not once per line."""

    _second: tuple[int, str] = (-1, "")  # one attribute, so that threads never see half an update

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached, text = self._second
        if cached != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"  # logging's default_msec_format, "%s,%03d"


class TurnBufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """logging's StreamHandler, writing the INFO lines one turn of the event loop logs in one write.

    A worker logs two lines per task; a write and a flush per line was the largest cost of a
    busy worker after the event loop itself. A line logged with no running loop (start-up,
    a thread) or at WARNING and above is written at once, after any that wait, so the lines
    that explain a hang are out before the hang; the others wait at most until the end of
    the turn. ``flush`` runs at exit too (registered here, since a server that configures
    logging again drops the handler from logging's own shutdown list).
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._flush_due_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        atexit.register(self._flush_at_exit)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._waiting.append(line)  # emit runs under the handler's lock (Handler.handle)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or record.levelno >= logging.WARNING:
            self.flush()
        elif self._flush_due_on is not loop:  # none scheduled, or on a loop that has stopped since
            self._flush_due_on = loop
            loop.call_soon(self.flush)

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except (OSError, ValueError):  # the stream closed first, as logging.shutdown allows
            pass

    def flush(self) -> None:
        self.acquire()
        try:
            self._flush_due_on = None
            if self._waiting:
                lines, self._waiting = "".join(self._waiting), []
                try:
                    self.stream.write(lines)
                except Exception:
                    self.handleError(logging.makeLogRecord({"msg": lines.rstrip()}))
            super().flush()
        finally:
            self.release()


def logging_config(debug: bool) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of every process: Django's LOGGING setting, and a worker's own."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"()": PlainFormatter, "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"console": {"()": TurnBufferedStreamHandler, "formatter": "plain"}},
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            "queueapp": {"level": "DEBUG" if debug else "INFO"},
            "dashboard": {"level": "DEBUG" if debug else "INFO"},
            "django": {"level": "INFO" if debug else "WARNING"},
            "daphne": {"level": "INFO" if debug else "WARNING"},
            "httpx": {"level": "WARNING"},
        },
    }


def lean_log_records() -> None:
    """Log records without what no formatter of ours prints: the caller's file, line and
    function, thread and process (the logging HOWTO's "Optimization" switches).

    Looking up the caller walks the stack on every line: a third of the 11 us a line cost,
    and a worker logs two lines per task. Process-wide, so only a process's own start-up
    calls it.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
