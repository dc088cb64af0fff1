"""Type and range rules for the values of a study file, checked before any study is created.

Each check raises :class:`Invalid` with one line: the ``[section] key``, the value as the file
wrote it, what is wrong, and what to write instead. ``load_study_config`` prefixes the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from xtune.errors import Invalid
from xtune.models.families import FAMILIES, SIZE
from xtune.search.ranges import Choice, Fixed, FloatRange, IntRange, Space

# A study name becomes file names (``<name>.journal``, ``<name>.artifacts``): no paths.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Rule:
    """What one numeric key accepts: whole numbers or any finite number, between two bounds
    (inclusive unless ``*_open``). ``example`` is a good value to suggest."""

    integer: bool
    low: float
    high: float
    example: str
    low_open: bool = False
    high_open: bool = False

    @property
    def kind(self) -> str:
        return "whole number" if self.integer else "number"

    @property
    def bounds(self) -> str:
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{_num(self.low)}, {_num(self.high)}{right}"

    def describe(self) -> str:
        return f"a {self.kind} in {self.bounds}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` breaks this rule, or None. A bool is not a number, a float not an int."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{show(value)} is {_kind(value)}, not a number"
        if self.integer and isinstance(value, float):
            return f"{show(value)} is not a whole number"
        if not math.isfinite(value):
            return f"{show(value)} is not a finite number"
        below = value <= self.low if self.low_open else value < self.low
        above = value >= self.high if self.high_open else value > self.high
        if below or above:
            return f"{show(value)} is outside {self.bounds}"
        return None


RULES: dict[str, Rule] = {
    "study.trials": Rule(True, 1, 1_000_000, "20"),
    "study.seed": Rule(True, 0, 2**31 - 1, "0"),
    "data.window": Rule(True, 2, 100_000, "[16, 64]"),
    "data.window_step": Rule(True, 1, 100_000, "8"),
    "labels.horizons": Rule(True, 1, 100_000, "[1, 4]"),
    "labels.dead_zone": Rule(False, 0, 1, "0.0005", high_open=True),
    "labels.classes": Rule(True, 2, 3, "2"),
    "split.val": Rule(False, 0, 1, "0.15", low_open=True, high_open=True),
    "split.test": Rule(False, 0, 1, "0.15", low_open=True, high_open=True),
    "split.purge": Rule(True, 0, 100_000, "0"),
    "split.folds": Rule(True, 1, 100, "1"),
    "split.min_samples": Rule(True, 1, 10**9, "64"),
    "features.min": Rule(True, 1, 100_000, "1"),
    "features.max": Rule(True, 1, 100_000, "10"),
    "train.epochs": Rule(True, 1, 100_000, "20"),
    "train.patience": Rule(True, 1, 100_000, "4"),
    "train.max_seconds": Rule(False, 0, 10**7, "600 (0: no limit)"),
    "train.batch_size": Rule(True, 1, 2**20, "{choices = [128, 256]}"),
    "train.lr": Rule(False, 0, 1, "[3e-4, 1e-2]", low_open=True),
    "train.weight_decay": Rule(False, 0, 1, "[1e-5, 1e-1]"),
    "train.dropout": Rule(False, 0, 1, "[0.0, 0.3]", high_open=True),
    "train.return_weight": Rule(False, 0, 100, "[0.0, 1.0]"),
    "train.label_smoothing": Rule(False, 0, 0.5, "0.0", high_open=True),
    "train.focal_gamma": Rule(False, 0, 100, "0.0"),
    "caps.max_width": Rule(True, 1, SIZE, "256"),
    "caps.max_depth": Rule(True, 1, 64, "4"),
    "caps.max_params": Rule(True, 1, 10**10, "1000000"),
    "caps.max_latency_ms": Rule(False, 0, 1e6, "10.0", low_open=True),
    "caps.latency_scale": Rule(False, 1, 1e6, "1.0"),
    "trading.fee": Rule(False, 0, 0.1, "0.0001", high_open=True),
    "trading.confident_share": Rule(False, 0, 1, "0.3", low_open=True),
}


def show(value: Any) -> str:
    """A value as a study file writes it (``true``, ``"x"``, ``[1, 2]``), cut to one short line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, int):
        return "an integer"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class _Key:
    """One ``[section] name = raw`` of the file, and how to complain about it."""

    section: str
    name: str
    raw: Any

    @property
    def rule(self) -> Rule:
        """The key's rule: in :data:`RULES`, or a family's for ``[model.<family>]``."""
        family = self.section.removeprefix("model.")
        if family != self.section and family in FAMILIES:
            return Rule(*FAMILIES[family].rules[self.name])
        return RULES[f"{self.section}.{self.name}"]

    def invalid(self, problem: str, fix: str = "") -> Invalid:
        fix = fix or f"{self.rule.describe()}, e.g. {self.name} = {self.rule.example}"
        return Invalid(f"[{self.section}] {self.name} = {show(self.raw)}: {problem}; write {fix}.")

    def check(self, value: Any, what: str = "") -> None:
        problem = self.rule.problem(value)
        if problem:
            raise self.invalid(what + problem)


def number(section: str, name: str, raw: Any) -> Any:
    """A single number for ``[section] name``, checked against its rule (an int or a float)."""
    key = _Key(section, name, raw)
    key.check(raw)
    return raw if key.rule.integer else float(raw)


def checked(section: str, data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with each of ``names`` that it holds checked as a single number."""
    return {k: number(section, k, raw) if k in names else raw for k, raw in data.items()}


def numbers(section: str, name: str, raw: Any) -> tuple[Any, ...]:
    """A non-empty list of numbers for ``[section] name``, each checked against its rule."""
    key = _Key(section, name, raw)
    rule = key.rule
    fix = f"a list of {rule.kind}s in {rule.bounds}, e.g. {name} = {rule.example}"
    if not isinstance(raw, list) or not raw:
        raise key.invalid(f"{show(raw)} is {_kind(raw)}, not a non-empty list", fix)
    for item in raw:
        problem = rule.problem(item)
        if problem:
            raise key.invalid(problem, fix)
    return tuple(raw)


def text(
    section: str,
    name: str,
    raw: Any,
    example: str,
    *,
    choices: tuple[str, ...] = (),
    file_name: bool = False,
    empty: bool = False,
) -> str:
    """A string for ``[section] name``: non-empty unless ``empty``, without control characters,
    one of ``choices`` if given, usable as a file name (:data:`NAME`) if ``file_name``."""
    key = _Key(section, name, raw)
    fix = f"{name} = {example}"
    if choices:
        fix = f"one of {', '.join(json.dumps(c) for c in choices)}, e.g. {fix}"
    if file_name:
        fix = f"1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. {fix}"
    if not isinstance(raw, str):
        raise key.invalid(f"{show(raw)} is {_kind(raw)}, not a string", fix)
    if not raw and not empty:
        raise key.invalid("it is empty", fix)
    if any(ord(c) < 32 for c in raw):
        raise key.invalid("it holds a control character", fix)
    if choices and raw not in choices:
        raise key.invalid(f"{show(raw)} is unknown", fix)
    if file_name and not NAME.fullmatch(raw):
        raise key.invalid(f"{show(raw)} cannot be used as a file name", fix)
    return raw


def texts(section: str, name: str, raw: Any, example: str) -> tuple[str, ...]:
    """A list of strings for ``[section] name`` (the parser checks which strings)."""
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        fix = f"{name} = {example}"
        raise _Key(section, name, raw).invalid("expected a list of strings", fix)
    return tuple(raw)


def space(section: str, name: str, raw: Any, *, step: int = 1, log: bool = False) -> Space:
    """A search-space value for ``[section] name``: a number (fixed), ``[low, high]`` or
    ``{choices = [...]}``, every value checked against the key's rule (ends only, for a range:
    a range is never enumerated)."""
    key = _Key(section, name, raw)
    if isinstance(raw, dict):
        return _choice(key, raw)
    if isinstance(raw, list):
        return _range(key, raw, step, log)
    key.check(raw)
    return Fixed(raw)


def _choice(key: _Key, raw: dict[str, Any]) -> Choice:
    options = raw.get("choices")
    if set(raw) != {"choices"} or not isinstance(options, list) or not options:
        raise key.invalid("a choice is written {choices = [a, b, ...]} with at least one value")
    for option in options:
        key.check(option, "choice ")
    if len(set(options)) != len(options):
        raise key.invalid("a choice is listed twice")
    return Choice(tuple(options))


def _range(key: _Key, raw: list[Any], step: int, log: bool) -> IntRange | FloatRange:
    if len(raw) != 2:
        raise key.invalid("a range is written [low, high] (two values)")
    key.check(raw[0], "low ")
    key.check(raw[1], "high ")
    low, high = raw
    if low > high:
        raise key.invalid(f"low {show(low)} > high {show(high)}", "[low, high] with low <= high")
    if log and low <= 0:
        raise key.invalid(f"is searched on a log scale, so low must be > 0, got {show(low)}")
    if key.rule.integer:
        return IntRange(low, high, step)
    return FloatRange(float(low), float(high), log)
