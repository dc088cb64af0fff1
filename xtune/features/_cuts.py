"""Where the look-ahead check of a trader's own features truncates the bars.

A feature that reads bar ``i + k`` at row ``i`` shows it only on ``bars[:t]`` with
``i < t <= i + k``: a one-bar leak shows on the row right before a cut and nowhere else. So
the cut points decide which leaks the audit can see, and a trader's own features get many:

- **spread**: 10%, 41% and 82% of the rows (the cuts every audited feature gets);
- **late**: ``LATE_CUTS`` evenly over the last tenth, up to the second-last bar, where a data
  source that changed at some date, or the test part, begins;
- **calendar**: for each weekday-and-hour, day of month and minute of the hour that the bars
  hold, one cut right after a bar at that position, chosen at random: a leak only at 13:00,
  only on Mondays at 9:00 or only at month ends shows on at least one cut;
- **random**: ``RANDOM_CUTS`` more, uniform over the bars.

The random choices are seeded (``SEED``), so an audit of the same bars always cuts at the same
points.

Example:
    >>> from xtune.features.sample import synthetic_bars
    >>> len(own_cuts(synthetic_bars(1500, seed=3).index, warmup=19)) > 168
    True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CUT_FRACTIONS = (0.1, 0.41, 0.82)  # of the rows, the spread cuts
LATE_FROM = 0.9  # of the rows, where the late cuts begin
LATE_CUTS = 8
RANDOM_CUTS = 24
SEED = 21


def spread_cuts(rows: int, warmup: int) -> tuple[int, ...]:
    """Cuts at ``CUT_FRACTIONS`` of the rows, each leaving rows after the warm-up to compare."""
    cuts = {min(rows - 1, max(warmup + 2, round(rows * f))) for f in CUT_FRACTIONS}
    return tuple(sorted(cuts))


def own_cuts(index: pd.DatetimeIndex, warmup: int, seed: int = SEED) -> tuple[int, ...]:
    """Spread, late, calendar and random cuts over bars at times ``index``; each cut ``t`` lies
    in ``[warmup + 2, len(index) - 1]`` (rows after the warm-up to compare, a bar left out)."""
    rows = len(index)
    lo, hi = warmup + 2, rows - 1
    if hi < lo:
        return ()
    rng = np.random.default_rng(seed)
    late = np.linspace(max(lo, round(rows * LATE_FROM)), hi, LATE_CUTS).round().astype(int)
    cuts = set(spread_cuts(rows, warmup)) | set(late.tolist())
    cuts |= set(rng.integers(lo, hi + 1, RANDOM_CUTS).tolist())
    return tuple(sorted(cuts | _calendar_cuts(index, lo, hi, rng)))


def _calendar_cuts(index: pd.DatetimeIndex, lo: int, hi: int, rng: np.random.Generator) -> set[int]:
    """One cut right after a random bar of each calendar position (cut ``t`` after row ``t-1``)."""
    last = pd.DatetimeIndex(index[lo - 1 : hi])  # the rows a cut in [lo, hi] ends on
    positions = (
        last.day_of_week.to_numpy() * 24 + last.hour.to_numpy(),  # weekday and hour
        last.day.to_numpy(),  # day of the month
        last.minute.to_numpy(),  # minute of the hour
    )
    order = rng.permutation(len(last))  # a random bar of each position: its first in this order
    cuts: set[int] = set()
    for position in positions:
        first = np.unique(position[order], return_index=True)[1]
        cuts |= set((lo + order[first]).tolist())
    return cuts
