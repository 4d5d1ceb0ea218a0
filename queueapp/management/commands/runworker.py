"""``runworker`` as a Django command, for ``django-admin`` and ``call_command``.

``manage.py runworker`` does not come here: it starts the same worker without Django
(``queueapp/worker/command.py``), which is what makes it start quickly.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueapp.startup import StartError, tracing_on
from queueapp.worker import command


class Command(BaseCommand):
    help = command.HELP
    # The system checks import the URLconf, and with it every protocol module and the
    # dashboard: a worker uses none of them, and `serve` or `manage.py check` runs them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        command.add_arguments(parser)

    def handle(self, *args: str, **options: Any) -> None:
        try:
            cfg, agent = command.prepare(options["concurrency"], options["agent"])
            with tracing_on():
                command.run_loop(command.work(cfg, agent))
        except StartError as exc:
            raise CommandError(str(exc)) from None
