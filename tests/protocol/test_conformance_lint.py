"""An independent conformance check: the a2a-lint kit against a live server.

a2a-lint validates the agent card against the A2A specification and makes real
``message/send`` and ``message/stream`` round trips. ``--strict`` turns its warnings into
failures, so any finding above "info" fails this test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.protocol.conftest import start_live


def lint_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("a2a-lint")
    found = str(beside_python) if beside_python.exists() else shutil.which("a2a-lint")
    assert found, "a2a-lint is not installed: it is in requirements-test.txt"
    return [found]


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
    assert run.returncode == 0, problems or run.stderr
    assert report["summary"] == {"errors": 0, "warnings": 0, "grade": "A"}
    assert report["streamEvents"] >= 2  # the card declares streaming, so the stream was checked too
