"""The README's configuration table and .env.example name every setting, and only real ones."""

from __future__ import annotations

import re

import pytest

from queueapp.config import ENV_FILE_VARIABLE, SETTINGS
from tests.support import ROOT

MAP_FORMS = {"A2A_QUEUE_OPTIONS", "A2A_QUEUE_CREDENTIALS"}


def names_in(text: str) -> set[str]:
    return set(re.findall(r"\bA2A_[A-Z0-9_]+\b", text))


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = sorted(set(SETTINGS) - names_in(text))
    assert not missing, f"{document} does not mention {missing}"


@pytest.mark.parametrize("document", ["README.md", ".env.example", "docker-compose.yaml"])
def test_documents_name_only_real_settings(document: str) -> None:
    text = (ROOT / document).read_text()
    unknown = sorted(names_in(text) - set(SETTINGS) - MAP_FORMS - {ENV_FILE_VARIABLE})
    assert not unknown, f"{document} names settings that do not exist: {unknown}"


def test_readme_table_lists_each_setting_once_with_a_default() -> None:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if re.match(r"\| `A2A_[A-Z0-9_]+` \|", line)]
    named = [re.match(r"\| `(A2A_[A-Z0-9_]+)`", row).group(1) for row in rows]
    assert sorted(named) == sorted(set(named)), "a setting appears twice in the table"
    assert set(named) == set(SETTINGS)
    assert all(row.count("|") >= 4 for row in rows)
