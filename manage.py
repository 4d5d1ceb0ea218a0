#!/usr/bin/env python
"""Django's command-line utility: serve, runworker, cleanup_tasks, a2a_client and the rest."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
