"""``manage.py a2a_client``: the demo client. Submits sample tasks and follows them to the end."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueapp import config as config_module
from queueapp.client.demo import SAMPLE_TASKS, Options, report, run_demo
from queueapp.client.progress import Display
from queueapp.client.rpc import PROTOCOLS, ClientError

TRANSPORTS = ("jsonrpc", "grpc")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, not {value}")
    return value


def http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// url, not {text!r}")
    return text


def _default_url() -> str:
    """Where this machine's ``serve`` listens, read from the same settings it reads."""
    try:
        return config_module.get().local_url()
    except config_module.ConfigError as exc:
        raise CommandError(f"{exc} (or pass --url)") from None


class Command(BaseCommand):
    help = "Demo A2A client: waits for the server, submits sample tasks and follows each to its final state."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", type=http_url, help="the server's base url (default: A2A_PUBLIC_URL, else A2A_SERVER_HOST and A2A_SERVER_PORT, as serve uses them)")
        parser.add_argument("--token", help="a bearer token, when the server has auth on")
        parser.add_argument("--count", type=positive_int, help=f"how many tasks to submit (default {len(SAMPLE_TASKS)} samples, or one --text)")
        parser.add_argument("--text", help="send this message instead of the samples")
        parser.add_argument("--context", help="put every task in this context (default: a new context per task, started by the server; with auth on, only a context the server gave this identity)")
        parser.add_argument("--stream", action="store_true", help="stream each task's events instead of polling")
        parser.add_argument("--protocol", choices=PROTOCOLS, default="1.0", help="A2A protocol version to speak (default 1.0)")
        parser.add_argument("--transport", choices=TRANSPORTS, default="jsonrpc", help="jsonrpc, or grpc through the a2a-sdk's gRPC client at the card's gRPC address (A2A 1.0 only)")
        parser.add_argument("--wait", type=positive_int, default=30, help="attempts (a second apart) to wait for /health (default 30)")
        parser.add_argument("--timeout", type=positive_int, default=300, help="seconds to wait for each task's final state (default 300)")

    def handle(self, *args: str, **options: Any) -> None:
        if options["transport"] == "grpc" and options["protocol"] != "1.0":
            raise CommandError("--transport grpc speaks A2A 1.0 only: leave out --protocol 0.3")
        opts = Options(
            url=options["url"] or _default_url(),
            token=options["token"],
            count=options["count"] or (1 if options["text"] else len(SAMPLE_TASKS)),
            text=options["text"],
            context=options["context"],
            stream=options["stream"],
            protocol=options["protocol"],
            transport=options["transport"],
            health_attempts=options["wait"],
            task_timeout=options["timeout"],
        )
        self.stdout.ending = ""  # the live display writes partial lines (cursor moves)
        display = Display(self.stdout, live=self.stdout.isatty())
        try:
            tracked = asyncio.run(run_demo(opts, display))
        except ClientError as exc:
            raise CommandError(str(exc)) from None
        failures = report(tracked, display)
        if failures:
            raise CommandError(f"{failures} of {len(tracked)} tasks did not complete")
        display.log("The task completed" if len(tracked) == 1 else f"All {len(tracked)} tasks completed")
