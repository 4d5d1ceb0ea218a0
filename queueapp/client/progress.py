"""What the demo client shows: a live block of progress lines on a terminal, plain lines elsewhere."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from io import TextIOBase

from queueapp import model
from queueapp.model import Json
from queueapp.states import TaskState

PREVIEW_CHARS = 120
SPINNER = "|/-\\"


@dataclass
class Tracked:
    """One sample task as the client sees it."""

    number: int
    text: str
    context_id: str | None
    task_id: str = ""
    state: TaskState = TaskState.SUBMITTED
    detail: str = ""
    progress: float | None = None
    chunks: int = 0
    task: Json | None = None
    reply: str = ""
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def settled(self) -> bool:
        return self.state.is_terminal or self.state.is_interrupted or bool(self.error)

    @property
    def ok(self) -> bool:
        return self.state is TaskState.COMPLETED and not self.error

    def apply_task(self, task: Json) -> None:
        self.task = task
        self.task_id = task.get("id", self.task_id)
        self.context_id = task.get("contextId", self.context_id)
        self.apply_status(task.get("status") or {})
        self.reply = reply_text(task) or self.reply

    def apply_status(self, status: Json) -> None:
        self.state = TaskState.parse(str(status.get("state", "unknown")))
        message = status.get("message")
        if message:
            self.detail = model.message_text(message)
            progress = (message.get("metadata") or {}).get("progress")
            self.progress = float(progress) if isinstance(progress, int | float) else self.progress

    def apply_event(self, event: Json) -> None:
        """Take in one StreamResponse (1.0 shape)."""
        if "task" in event:
            self.apply_task(event["task"])
        elif "statusUpdate" in event:
            self.apply_status(event["statusUpdate"].get("status") or {})
        elif "artifactUpdate" in event:
            self.chunks += 1
        elif "message" in event:
            # A direct reply: the message is the answer and the task is done.
            self.reply = model.message_text(event["message"])
            self.state = TaskState.COMPLETED


def is_agent(message: Json) -> bool:
    return str(message.get("role", "")).upper() in ("ROLE_AGENT", "AGENT")


def reply_text(task: Json) -> str:
    """The agent's answer: the last agent message, else the text of the artifacts."""
    status_message = (task.get("status") or {}).get("message")
    if status_message and is_agent(status_message) and model.message_text(status_message):
        return model.message_text(status_message)
    for message in reversed(task.get("history") or []):
        if is_agent(message) and model.message_text(message):
            return model.message_text(message)
    return "".join(model.message_text(artifact) for artifact in task.get("artifacts") or [])


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 3] + "..."


class Display:
    """Log lines, plus a live progress block redrawn in place when ``live`` (a terminal)."""

    def __init__(self, out: TextIOBase, live: bool):
        self.out = out
        self.live = live
        self.tracked: list[Tracked] = []
        self._drawn = 0
        self._last: dict[int, tuple[TaskState, str]] = {}
        self._ticks = 0

    def log(self, text: str) -> None:
        self._clear()
        self.out.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self._draw()

    def update(self, item: Tracked) -> None:
        if item.settled and item.ended is None:
            item.ended = time.monotonic()
        if self.live:
            self._clear()
            self._draw()
            return
        key = (item.state, item.detail)
        if self._last.get(item.number) != key:
            self._last[item.number] = key
            detail = f", message={preview(item.detail)!r}" if item.detail else ""
            self.log(f"Task update, task_id={item.task_id}, state={item.state.value}{detail}")

    def tick(self) -> None:
        """Advance the spinner (the live block only)."""
        if self.live:
            self._ticks += 1
            self._clear()
            self._draw()

    def _line(self, item: Tracked) -> str:
        elapsed = (item.ended or time.monotonic()) - item.started
        mark = "done" if item.ok else ("FAIL" if item.settled else SPINNER[self._ticks % len(SPINNER)])
        bar = ""
        if item.progress is not None and not item.settled:
            filled = int(item.progress * 10)
            bar = "[" + "#" * filled + "." * (10 - filled) + f"] {item.progress:4.0%} "
        chunks = f" {item.chunks} chunks" if item.chunks else ""
        ident = model.short_id(item.task_id) or "--------"
        return f"  {mark:>4} {item.number:>2}. {ident} {item.state.value:<14} {elapsed:5.1f}s {bar}{preview(item.detail)[:60]}{chunks}"

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if self.live and self.tracked:
            width = shutil.get_terminal_size().columns - 1  # a wrapped line would break the redraw
            for item in self.tracked:
                self.out.write(self._line(item)[:width] + "\n")
            self._drawn = len(self.tracked)
        self.out.flush()

    def finish(self) -> None:
        """Leave the final block on screen and stop redrawing it."""
        self._drawn = 0
        self.out.flush()
