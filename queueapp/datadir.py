"""The local data folder (A2A_DATA_DIR), shared by every process started on one machine.

Several ``serve`` processes may start at once on a fresh folder. What each does there
the first time (create the dashboard's database, its admin user, the secret key) must
then happen once, not once per process racing the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

SETUP_LOCK = "setup.lock"


@contextlib.contextmanager
def setup_lock(data_dir: str | Path) -> Iterator[None]:
    """Hold the folder's first-start lock: one process at a time migrates and bootstraps."""
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / SETUP_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, also if the process dies
        yield


def read_or_create_secret(path: Path) -> str:
    """The secret kept at ``path``, made on first use; every racing process gets the same one."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(secrets.token_urlsafe(50))
    draft.chmod(0o600)
    try:
        os.link(draft, path)  # atomic: fails if another process made it first, and then its key wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()
