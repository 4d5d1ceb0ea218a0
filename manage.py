#!/usr/bin/env python
"""Django's command-line utility: serve, runworker, cleanup_tasks, a2a_client and the rest."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["runworker"]:
        # A worker needs nothing of Django: started without it, it claims its first task sooner.
        from queueapp.worker.command import main as run_worker

        sys.exit(run_worker(sys.argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
