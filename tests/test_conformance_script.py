"""``make conformance``'s own logic: which transports it asks the kit for, how it counts, where its bar is."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT

spec = importlib.util.spec_from_file_location("conformance", ROOT / "scripts" / "conformance.py")
conformance = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conformance)

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.compatibility.core_operations.test_requirements" name="test_must_requirement[CORE-SEND-001-jsonrpc]"/>
<testcase classname="tests.compatibility.core_operations.test_requirements" name="test_must_requirement[CORE-SEND-003-http_json]"><failure message="x"/></testcase>
<testcase classname="tests.compatibility.agent_card.test_agent_card" name="test_agent_card_validates_against_schema">{extra}</testcase>
<testcase classname="tests.compatibility.core_operations.test_requirements" name="test_should_requirement[CORE-X-001-jsonrpc]"><skipped type="pytest.xfail"/></testcase>
</testsuite></testsuites>"""


def junit(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT.format(extra=extra))
    return path


def test_counts_come_from_the_kit_report_and_an_expected_failure_counts_as_skipped(tmp_path):
    results = conformance.read_junit(junit(tmp_path))
    assert (results.passed, len(results.failed), results.skipped) == (2, 1, 1)


def test_a_known_kit_fault_keeps_the_bar_and_anything_else_breaks_it(tmp_path, capsys):
    assert conformance.verdict(conformance.read_junit(junit(tmp_path))) == 0
    out = capsys.readouterr().out
    assert "2 passed, 1 failed, 1 skipped" in out and "known kit fault" in out
    assert conformance.verdict(conformance.read_junit(junit(tmp_path, '<error message="boom"/>'))) == 1
    assert "NOT a known kit fault" in capsys.readouterr().out


def test_every_known_fault_says_why():
    assert conformance.KNOWN_KIT_FAULTS
    for requirement, reason in conformance.KNOWN_KIT_FAULTS.items():
        assert conformance.REQUIREMENT_ID.fullmatch(requirement)
        assert len(reason) > 80 and ".py:" in reason  # the kit's line that is wrong


@pytest.mark.parametrize(
    "bindings,expected",
    [
        (["JSONRPC", "HTTP+JSON", "JSONRPC", "HTTP+JSON"], ["jsonrpc", "http_json"]),
        (["JSONRPC", "HTTP+JSON", "GRPC"], ["jsonrpc", "http_json", "grpc"]),
        (["GRPC", "SOMETHING-NEW"], ["grpc"]),
    ],
)
def test_the_transports_are_every_binding_the_card_declares(monkeypatch, bindings, expected):
    card = {"supportedInterfaces": [{"protocolBinding": b, "url": "http://127.0.0.1:1"} for b in bindings]}
    monkeypatch.setattr(conformance.httpx, "get", lambda url, timeout: httpx.Response(200, json=card))
    assert conformance.declared_transports("http://127.0.0.1:1") == expected


def test_the_copy_of_a_read_only_kit_can_hold_its_reports_and_be_removed(tmp_path):
    kit = tmp_path / "kit"
    (kit / "tests").mkdir(parents=True)
    (kit / "tests" / "case.py").write_text("x = 1\n")
    for path in (kit / "tests" / "case.py", kit / "tests", kit):
        path.chmod(0o555 if path.is_dir() else 0o444)
    conformance.writable(kit)
    assert all(path.stat().st_mode & 0o200 for path in [kit, *kit.rglob("*")])
