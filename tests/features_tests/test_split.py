"""Chronological splits: parts in time order, purge gaps that stop window/label overlap."""

from __future__ import annotations

import itertools

import pytest

from xtune.errors import SpecError
from xtune.features import SplitSpec, chronological_split, min_rows


def _rows_touched(ends: range, window: int, horizon: int) -> tuple[int, int]:
    """First input row and last label row used by samples ending at `ends`."""
    return ends.start - window + 1, ends.stop - 1 + horizon


@pytest.mark.parametrize("window, horizon, purge", [(1, 1, 0), (30, 1, 0), (60, 4, 10)])
def test_parts_are_ordered_and_never_share_a_bar(window: int, horizon: int, purge: int) -> None:
    split = chronological_split(3000, window, horizon, SplitSpec(purge=purge))
    (fold,) = split.folds
    parts = [fold.train, fold.val, split.test]
    assert split.gap == window + horizon + purge
    for before, after in itertools.pairwise(parts):
        assert after.start - (before.stop - 1) == split.gap
        assert _rows_touched(before, window, horizon)[1] < _rows_touched(after, window, horizon)[0]
    assert fold.train.start == window - 1
    assert split.test.stop - 1 + horizon == 3000 - 1  # the last label uses the last bar


def test_fractions_are_respected() -> None:
    split = chronological_split(10_000, 20, 1, SplitSpec(val=0.2, test=0.1))
    (fold,) = split.folds
    usable = len(fold.train) + len(fold.val) + len(split.test)
    assert abs(len(fold.val) / usable - 0.2) < 0.001
    assert abs(len(split.test) / usable - 0.1) < 0.001


def test_walk_forward_folds_expand_and_keep_the_test_part_apart() -> None:
    spec = SplitSpec(folds=4)
    split = chronological_split(6000, 40, 2, spec)
    single = chronological_split(6000, 40, 2, SplitSpec())
    assert len(split.folds) == 4
    assert split.test == single.test
    for k, fold in enumerate(split.folds):
        assert fold.train.start == 39
        assert fold.val.start - (fold.train.stop - 1) == split.gap
        if k:
            assert fold.train.stop > split.folds[k - 1].train.stop  # expanding
            assert fold.val.start == split.folds[k - 1].val.stop  # consecutive blocks
    assert split.test.start - (split.folds[-1].val.stop - 1) == split.gap
    assert split.development == range(39, split.folds[-1].val.stop)


def test_min_rows_is_exact_and_the_error_says_how_many() -> None:
    spec = SplitSpec()
    need = min_rows(60, 1, spec)
    chronological_split(need, 60, 1, spec)
    with pytest.raises(SpecError) as err:
        chronological_split(need - 1, 60, 1, spec)
    message = str(err.value)
    assert f"Need at least {need} rows" in message
    assert "shorter window" in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"val": 0},
        {"test": 1.2},
        {"val": 0.5, "test": 0.45},
        {"purge": -1},
        {"folds": 0},
        {"min_samples": 0},
    ],
)
def test_bad_split_specs(kwargs: dict[str, float]) -> None:
    with pytest.raises(SpecError, match="split"):
        SplitSpec(**kwargs)  # type: ignore[arg-type]
