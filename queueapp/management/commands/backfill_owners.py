"""``manage.py backfill_owners``: index tasks stored before tasks had owners under their owners."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand

from queueapp import embedded
from queueapp.management.base import load_config, open_store


class Command(BaseCommand):
    help = "Put tasks stored by an earlier version with auth on into their owners' indexes, so their owners see them again."

    def handle(self, *args: str, **options: Any) -> None:
        count = asyncio.run(self._run())
        # The count is of owned tasks looked at: most are already indexed, and a repeat finds them all so.
        self.stdout.write(f"Checked {count} owned task{'s' if count != 1 else ''}: each is in its owner's indexes")

    async def _run(self) -> int:
        cfg = load_config()
        store = await open_store(cfg, check_policy=False)
        try:
            return await store.backfill_owners()
        finally:
            await store.close()
            await embedded.let_go(cfg)  # started for this command alone, it stops with it
