"""``[features.count]``: how many features of each group a trial uses, checked against the
study's own candidates before anything is created.

Written as ``group = [low, high]`` or ``group = n`` (exactly n), e.g.::

    [features.count]
    pattern = 6          # exactly 6 candlestick patterns
    trend = [2, 8]

Each problem raises :class:`~xtune.errors.Invalid` with one line naming the key, the
value and what to write; ``load_study_config`` prefixes the file.
"""

from __future__ import annotations

import difflib
from typing import Any

from xtune.errors import Invalid
from xtune.features.catalog import GROUPS
from xtune.search._validate import show
from xtune.search.sections import FeatureSection, GroupCount

_KEY = "[features.count]"


def counts(raw: Any, section: FeatureSection) -> tuple[GroupCount, ...]:
    """The checked counts of ``raw`` (the ``count`` table) for ``section`` (its other keys)."""
    if not isinstance(raw, dict):
        raise Invalid(f"{_KEY} must be a table of group = [low, high], got {show(raw)}.")
    if raw and section.unit != "feature":
        raise Invalid(
            f'{_KEY} needs [features] unit = "feature" (one switch per feature); with unit = '
            f'"{section.unit}" a group is on or off whole. Set unit = "feature", or remove {_KEY}.'
        )
    out = tuple(_count(group, value, section) for group, value in raw.items())
    lows = sum(c.low for c in out)
    if lows > section.max:
        raise Invalid(
            f"{_KEY} the lows add up to {lows} features, above [features] max = {section.max}: "
            "no trial could fit. Lower the counts or raise max."
        )
    free = len(section.units) - sum(len(section.members(c.group)) for c in out)
    most = sum(c.high for c in out) + free
    if most < section.min:
        raise Invalid(
            f"{_KEY} at most {most} features can be on, below [features] min = {section.min}: "
            "no trial could fit. Raise the counts or lower min."
        )
    return out


def _count(group: str, value: Any, section: FeatureSection) -> GroupCount:
    fix = f"{group} = [low, high] with whole numbers 0 <= low <= high, or {group} = n for exactly n"
    if group not in GROUPS:
        close = difflib.get_close_matches(group, GROUPS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"groups are {', '.join(GROUPS)}."
        raise Invalid(f"{_KEY} {group} = {show(value)}: unknown group; {hint}")
    bounds = value if isinstance(value, list) else [value]
    if len(bounds) not in (1, 2) or not all(_whole(b) for b in bounds):
        raise Invalid(f"{_KEY} {group} = {show(value)}: not a count; write {fix}.")
    low, high = bounds[0], bounds[-1]
    if low > high:
        raise Invalid(f"{_KEY} {group} = {show(value)}: low {low} > high {high}; write {fix}.")
    n = len(section.members(group))
    if n == 0:
        raise Invalid(
            f'{_KEY} {group} = {show(value)}: this study searches no {group} feature; add "{group}" '
            "to [features] groups, or name some of its features in [features] names."
        )
    if high > n:
        raise Invalid(
            f"{_KEY} {group} = {show(value)}: {high} is more than the {n} {group} features this "
            f"study searches; write at most {group} = [{min(low, n)}, {n}]."
        )
    return GroupCount(group, low, high)


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0
