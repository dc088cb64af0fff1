"""Search-space values: fixed, an int or float range, or a list of choices. A model family
declares its space with them (:mod:`xtune.models.families`); a study file writes them.

An integer range is never enumerated: its ends, and whether all its values share a divisor,
are arithmetic, so ``hidden = [16, 1000000000]`` costs nothing to inspect.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    @property
    def top(self) -> int:
        """The largest value on the step grid (``high`` itself when the step divides the span)."""
        return self.low + (self.high - self.low) // self.step * self.step


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]


Space = Fixed | IntRange | FloatRange | Choice


def values(space: Space, step: int | None = None) -> Sequence[Any]:
    """Every value a space can produce (a float range gives its two ends).

    An integer range comes back as a lazy ``range`` (stepped by ``step``, else its own step):
    iterate it only when it is known to be small.
    """
    if isinstance(space, Fixed):
        return [space.value]
    if isinstance(space, Choice):
        return list(space.options)
    if isinstance(space, IntRange):
        return range(space.low, space.high + 1, step or space.step)
    return [space.low, space.high]


def lowest(space: Space) -> Any:
    """The smallest value a space can produce (for cap checks)."""
    if isinstance(space, IntRange | FloatRange):
        return space.low
    return min(values(space))


def highest(space: Space) -> Any:
    """The largest value a space can produce (an integer range: the top of its step grid)."""
    if isinstance(space, IntRange):
        return space.top
    if isinstance(space, FloatRange):
        return space.high
    return max(values(space))


def first_not_multiple(space: Space, divisor: int) -> int | None:
    """A value of an integer space that ``divisor`` does not divide, or None if it divides all."""
    if isinstance(space, IntRange):
        if space.low % divisor:
            return space.low
        if space.top != space.low and space.step % divisor:
            return space.low + space.step
        return None
    return next((v for v in values(space) if v % divisor), None)
