"""A worker's garbage collection between trials: cheap, and nothing kept for good."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from xtune.search.worker import FreezeSurvivors


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_what_survives_a_trial_is_frozen_and_a_trials_cycles_are_still_collected() -> None:
    freeze = FreezeSurvivors()
    kept = _Node()
    freeze()
    assert gc.get_freeze_count() > 0
    # A cycle made during the next trial is not frozen yet: the collection after it frees it.
    dead = _cycle()
    freeze()
    assert dead() is None
    assert kept.other is None  # what was alive is untouched


def test_a_frozen_cycle_that_died_later_is_collected_by_the_periodic_full_pass() -> None:
    freeze = FreezeSurvivors()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    freeze()  # the cycle is alive here: frozen
    del a, b
    for _ in range(FreezeSurvivors.FULL_EVERY - 2):
        freeze()
    assert ref() is not None  # frozen cycles are out of reach between full passes...
    freeze()  # ...until the full pass
    assert ref() is None
