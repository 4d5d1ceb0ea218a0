"""``manage.py cleanup_tasks``: apply the retention policy once."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueapp import embedded, retention
from queueapp.config import Config
from queueapp.management.base import load_config, open_store


class Command(BaseCommand):
    help = "Apply the retention policy once: keep the newest finished tasks (completed; failed, canceled and rejected), drop what is too old."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show what would be removed without removing it")

    def handle(self, *args: str, **options: Any) -> None:
        cfg = load_config()
        removed = asyncio.run(self._run(cfg, options["dry_run"]))
        verb = "Would remove" if options["dry_run"] else "Removed"
        if not removed:
            self.stdout.write(f"{verb} nothing: history is within the retention policy")
            return
        for state, count in removed.items():
            self.stdout.write(f"{verb} {count} {state} task{'s' if count != 1 else ''}")
        self.stdout.write(f"{verb} {sum(removed.values())} tasks in all")

    async def _run(self, cfg: Config, dry_run: bool) -> dict[str, int]:
        store = await open_store(cfg, check_policy=False)
        try:
            return await retention.apply(store, cfg, dry_run=dry_run)
        finally:
            await store.close()
            await embedded.let_go(cfg)  # started for this command alone, it stops with it
