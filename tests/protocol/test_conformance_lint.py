"""An independent conformance check: the a2a-lint kit against a live server.

a2a-lint validates the agent card against the A2A 0.3 specification and makes real
``message/send`` and ``message/stream`` round trips. ``--strict`` turns its warnings into
failures, so any finding above "info" fails this test.

It is a 0.3 tool: it reads the card at ``agent-card.json`` and wants the 0.3 fields, which
the 1.0 card there must not have (the 1.0 schema forbids them). So it is run on the 0.3
card at ``agent.json`` (docs/protocol.md), and its one finding about that path, which 0.3
moved away from, is the only one allowed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.protocol.conftest import start_live

V03_CARD_PATH = "/.well-known/agent.json"
# a2a-lint's own entry point, reading the card only where this server keeps the 0.3 card.
LINT_ON_THE_0_3_CARD = f"import sys, a2a_lint.client, a2a_lint.cli; a2a_lint.client.CARD_PATHS[:] = [{V03_CARD_PATH!r}]; sys.exit(a2a_lint.cli.main())"


def lint_command() -> list[str]:
    assert shutil.which("a2a-lint", path=str(Path(sys.executable).parent)) or shutil.which("a2a-lint"), "a2a-lint is not installed: it is in requirements-test.txt"
    return [sys.executable, "-c", LINT_ON_THE_0_3_CARD]


@pytest.mark.parametrize("agent", ["echo", "demo", "conformance"])
def test_a2a_lint_grades_the_live_server_a_with_no_warnings(tmp_path, agent):
    live = start_live(tmp_path, A2A_AGENT=agent)
    try:
        run = subprocess.run([*lint_command(), live.url, "--live", "--strict", "--json"], capture_output=True, text=True, timeout=120)
    finally:
        live.serve.stop()
        live.redis.stop()
    report = json.loads(run.stdout)
    problems = [f for f in report["findings"] if f["level"] != "info"]
    assert [(f["level"], f["field"]) for f in problems] == [("warn", "(location)")], problems or run.stderr
    assert report["summary"]["errors"] == 0 and report["summary"]["warnings"] == 1
    assert report["streamEvents"] >= 2  # the card declares streaming, so the stream was checked too
