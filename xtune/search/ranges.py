"""Search-space values of a study file (defined in :mod:`xtune.models.ranges`, where the model
families declare their spaces with them)."""

from __future__ import annotations

from xtune.models.ranges import (
    Choice,
    Fixed,
    FloatRange,
    IntRange,
    Space,
    first_not_multiple,
    highest,
    lowest,
    values,
)

__all__ = [
    "Choice",
    "Fixed",
    "FloatRange",
    "IntRange",
    "Space",
    "first_not_multiple",
    "highest",
    "lowest",
    "values",
]
