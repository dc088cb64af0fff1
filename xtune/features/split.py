"""Chronological train / validation / test splits with purge gaps, and walk-forward folds.

Splits are ranges of *sample end rows* t (the row a window ends at and labels). Between parts
a gap of ``window + horizon + purge`` rows is dropped, so no validation window shares a bar with
a training window or a training label: overlapping windows cannot leak across the boundary.
The test part is the last block and is only handed out on request (the search never sees it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from xtune.errors import SpecError, SplitTooSmall


@dataclass(frozen=True)
class SplitSpec:
    """How to cut the samples in time.

    Attributes:
        val: fraction of usable samples for validation (all folds together).
        test: fraction for the final, untouched test part.
        purge: extra rows dropped at each boundary, on top of window + horizon.
        folds: walk-forward folds; the validation region is cut into this many consecutive
            blocks and fold k trains on everything before its block (expanding window).
        min_samples: the least number of samples any train/val/test part may have.
    """

    val: float = 0.15
    test: float = 0.15
    purge: int = 0
    folds: int = 1
    min_samples: int = 64

    def __post_init__(self) -> None:
        if not (0 < self.val < 1 and 0 < self.test < 1 and self.val + self.test < 0.9):
            raise SpecError(
                f"split fractions val={self.val}, test={self.test} must be in (0, 1) and sum "
                "below 0.9 so training keeps at least 10%."
            )
        if self.purge < 0:
            raise SpecError(f"split.purge must be >= 0, got {self.purge}.")
        if self.folds < 1:
            raise SpecError(f"split.folds must be >= 1, got {self.folds}.")
        if self.min_samples < 1:
            raise SpecError(f"split.min_samples must be >= 1, got {self.min_samples}.")


@dataclass(frozen=True)
class Fold:
    """Train and validation sample-end rows of one fold."""

    train: range
    val: range


@dataclass(frozen=True)
class Split:
    folds: tuple[Fold, ...]
    test: range
    gap: int

    @property
    def development(self) -> range:
        """Every row the search may use (train and validation of all folds), for final refits."""
        return range(self.folds[0].train.start, self.folds[-1].val.stop)


def gap_rows(window: int, horizon: int, purge: int) -> int:
    """Distance between the last sample of one part and the first of the next."""
    return window + horizon + purge


def chronological_split(rows: int, window: int, horizon: int, spec: SplitSpec) -> Split:
    """Cut ``rows`` feature rows into folds and a test part, oldest first.

    Raises:
        SpecError: when the parts would be smaller than ``spec.min_samples``, with the number
            of rows that would be enough.
    """
    try:
        return _split(rows, window, horizon, spec)
    except SplitTooSmall as exc:
        need = min_rows(window, horizon, spec)
        raise SpecError(
            f"too few rows: {rows} usable rows (after feature warm-up) cannot hold window "
            f"{window} + horizon {horizon} + 2 purge gaps of {gap_rows(window, horizon, spec.purge)} "
            f"+ train/val/test of at least {spec.min_samples} samples each ({exc}). "
            f"Need at least {need} rows: use more bars, a shorter window, fewer folds, or "
            "smaller val/test fractions."
        ) from None


def _split(rows: int, window: int, horizon: int, spec: SplitSpec) -> Split:
    if window < 1 or horizon < 1:
        raise SpecError(f"window and horizon must be >= 1, got {window} and {horizon}.")
    gap = gap_rows(window, horizon, spec.purge)
    first, last = window - 1, rows - 1 - horizon  # sample ends with a full window and a label
    usable = (last - first + 1) - 2 * (gap - 1)  # samples left after two dropped gaps
    if usable <= 0:
        raise SplitTooSmall("no samples left after the gaps")
    n_test = round(usable * spec.test)
    n_val = round(usable * spec.val)
    n_train = usable - n_test - n_val
    if min(n_test, n_val // spec.folds, n_train) < spec.min_samples:
        raise SplitTooSmall(
            f"train {n_train}, val {n_val} over {spec.folds} fold(s), test {n_test}"
        )
    test = range(last - n_test + 1, last + 1)
    val_stop = test.start - gap + 1
    val_start = val_stop - n_val
    # Consecutive validation blocks; fold k trains on everything up to a gap before block k.
    bounds = [val_start + (n_val * k) // spec.folds for k in range(spec.folds + 1)]
    folds = tuple(
        Fold(train=range(first, lo - gap + 1), val=range(lo, hi))
        for lo, hi in itertools.pairwise(bounds)
    )
    return Split(folds, test, gap)


def min_rows(window: int, horizon: int, spec: SplitSpec) -> int:
    """Smallest number of feature rows for which :func:`chronological_split` succeeds."""
    lo, hi = 1, 1 << 40
    while lo < hi:  # the split is monotone in rows: binary search on the real function
        mid = (lo + hi) // 2
        try:
            _split(mid, window, horizon, spec)
            hi = mid
        except SplitTooSmall:
            lo = mid + 1
    return lo
