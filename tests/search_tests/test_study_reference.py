"""docs/study-file.md is generated from the tables that validate a study file, and current."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from xtune.models.families import FAMILIES
from xtune.search._validate import RULES
from xtune.search.config import FEATURE_KEYS
from xtune.search.study_reference import MEANING, NAMES, SECTIONS, TEXT, reference

PAGE = Path(__file__).resolve().parents[2] / "docs" / "study-file.md"


def test_the_page_is_what_the_code_generates() -> None:
    assert PAGE.read_text(encoding="utf-8") == reference(), (
        "docs/study-file.md is stale: run python -m xtune.search.study_reference > "
        "docs/study-file.md"
    )


def _accepted_keys() -> list[str]:
    """Every section key the study-file parser accepts (its tables' known keys)."""
    keys = []
    for section, cls in SECTIONS:
        names = FEATURE_KEYS if section == "features" else [f.name for f in fields(cls)]
        keys += [f"{section}.{n}" for n in names]
    return [*keys, "model.families"]


def test_every_key_the_parser_accepts_is_listed_with_its_meaning_and_values() -> None:
    page = reference()
    for key in _accepted_keys():
        section, name = key.split(".")
        block = page.split(f"## [{section}]")[1].split("\n## ")[0]
        assert f"| `{name}` |" in block, key
        assert MEANING.get(key), f"{key}: no line in study_reference.MEANING"
        assert key in RULES or key in NAMES or key in TEXT, f"{key}: what it accepts is unsaid"
    for family in FAMILIES.values():
        block = page.split(f"### [model.{family.name}]")[1].split("\n## ")[0]
        for f in fields(family.space):
            assert f"| `{f.name}` |" in block, (family.name, f.name)


def test_every_rule_is_stated_on_the_page() -> None:
    page = reference()
    for key, rule in RULES.items():
        section, name = key.split(".")
        row = next(r for r in page.split(f"## [{section}]")[1].splitlines() if f"| `{name}` |" in r)
        assert rule.describe() in row, (key, row)


def test_a_changed_rule_changes_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = dict(RULES, **{"study.trials": replace(RULES["study.trials"], high=5)})
    monkeypatch.setattr("xtune.search.study_reference.RULES", changed)
    page = reference()
    assert "| `trials` | `20` | a whole number in [1, 5] |" in page
    assert page != PAGE.read_text(encoding="utf-8")
