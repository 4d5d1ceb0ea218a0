"""The end of the waits a server holds open when it shuts down.

A blocking ``SendMessage`` (or a cancel waiting for the task to end) waits for its task's
next end. When serve stops and its grace is over, it ends them with :func:`end_waits`: each
answers as it would at its own timeout, with the task as it stands, so that the server's
stop cuts no response and costs the client no error. (Open event streams end the same way,
through ``sse.close_streams``.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

# One event per wait open in this process (one event loop serves them all).
_waits: set[asyncio.Event] = set()


@contextlib.contextmanager
def wait_until_shutdown() -> Iterator[asyncio.Event]:
    """An event set when the server ends its waits, for as long as the ``with`` lasts."""
    ended = asyncio.Event()
    _waits.add(ended)
    try:
        yield ended
    finally:
        _waits.discard(ended)


def end_waits() -> int:
    """End every open wait now; returns how many there were."""
    for ended in _waits:
        ended.set()
    return len(_waits)
