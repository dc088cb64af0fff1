"""Search-space values of a study file: fixed, an int or float range, or a list of choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]


Space = Fixed | IntRange | FloatRange | Choice


def values(space: Space, step: int = 1) -> list[Any]:
    """Every value an integer space can produce (a float range gives its two ends)."""
    if isinstance(space, Fixed):
        return [space.value]
    if isinstance(space, Choice):
        return list(space.options)
    if isinstance(space, IntRange):
        return list(range(space.low, space.high + 1, step))
    return [space.low, space.high]


def lowest(space: Space) -> Any:
    """The smallest value a space can produce (for cap checks)."""
    return min(values(space))


def highest(space: Space) -> Any:
    return max(values(space))
