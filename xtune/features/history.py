"""How much history a feature needs before its value stops depending on where it started.

A recursive smoother (EMA, Wilder's RSI/ATR/ADX, MACD) is seeded at the first bar it sees, so
a bot that keeps the last 300 bars computes other values than training, which saw the whole
file, unless the seed's weight has decayed. Each catalog feature declares that ``memory``
(:class:`~xtune.features.registry.Feature`); :func:`memory_violations` checks the declarations
on real bars, and :meth:`~xtune.features.FeatureSet.history_of` adds them up for a feature list.
A trader's own feature's declaration is measured against its values at audit time
(:func:`memory_needed`, run by :mod:`xtune.features._audit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from xtune.features.bars import Bars
from xtune.features.build import compute_features
from xtune.features.catalog import CATALOG
from xtune.features.feature_set import FeatureSet
from xtune.features.scaler import fit_robust

TOLERANCE = 1e-6  # of the feature's training scale


def memory_violations(
    bars: Bars,
    names: Iterable[str] | None = None,
    starts: Sequence[int] = (1, 17, 250, 900),
    *,
    memory: Mapping[str, int] | None = None,
    tol: float = TOLERANCE,
    feature_set: FeatureSet = CATALOG,
) -> list[str]:
    """Features whose value computed from bar ``s`` on differs from the value computed from the
    first bar, at a row at least their memory after ``s``, by more than ``tol`` of their scale.

    The scale is the training scaler's (:func:`~xtune.features.scaler.fit_robust`: IQR / 1.349,
    or the largest absolute deviation for a mostly constant column such as a candlestick
    pattern), fit on the full series after the warm-up. A NaN where a value is due counts.

    Args:
        bars: real bars, longer than every start plus the longest memory checked.
        names: features to check (default: the whole catalog).
        starts: bar offsets to start the computation from (the reference starts at bar 0).
        memory: declarations to check instead of the catalog's, by name (e.g. a shorter one,
            to see the check fail).
        tol: allowed difference, in units of the feature's scale.
        feature_set: where ``names`` are looked up (default the built-in catalog).

    Returns:
        One line per feature and start that disagrees (or leaves no row to check).
    """
    names = feature_set.resolve(names)
    full = compute_features(bars, names, feature_set=feature_set).to_numpy()  # [T, F]
    scale = fit_robust(full[feature_set.warmup_of(names) :], names).scale  # [F]
    declared = {n: max(feature_set[n].memory, feature_set[n].warmup) for n in names}
    declared |= dict(memory or {})
    problems = []
    for s in starts:
        later = Bars(bars.frame.iloc[s:], f"{bars.source}[{s}:]")
        part = compute_features(later, names, feature_set=feature_set).to_numpy()  # [T - s, F]
        for j, name in enumerate(names):
            m = declared[name]
            if len(part) <= m:
                problems.append(f"{name}: no row {m} bars after start {s} in {len(bars)} bars")
                continue
            diff = np.abs(part[m:, j] - full[s + m :, j]) / scale[j]  # [T - s - m]
            bad = np.flatnonzero(~(diff <= tol))  # NaN counts as bad
            if len(bad):
                k = int(bad[0])
                problems.append(
                    f"{name}: {m + k} bars after start {s}, {diff[k]:.3g} x its scale apart from "
                    f"the value computed from bar 0 (memory {m}; {len(bad)} such rows)"
                )
    return problems


def memory_starts(rows: int, warmup: int) -> tuple[int, ...]:
    """Later starts to measure a memory from: the first bars and a quarter and half way in,
    each leaving rows after the warm-up."""
    return tuple(s for s in sorted({1, 17, rows // 4, rows // 2}) if 0 < s < rows - warmup - 2)


def memory_needed(
    full: np.ndarray, later: Mapping[int, np.ndarray], *, tol: float = TOLERANCE
) -> int | None:
    """The shortest memory that holds for one feature on these bars: the bars after each
    start in ``later`` from which its values agree with ``full`` to ``tol`` of its scale.

    Args:
        full: the feature computed from the first bar. # [T]
        later: start -> the feature computed from that bar on. # [T - start]
        tol: allowed difference, in units of the scale (:func:`~xtune.features.scaler.fit_robust`
            on the finite values of ``full``).

    Returns:
        The memory in bars, or None when some start's newest value still differs: the value
        depends on where computation started for as long as these bars show (a running
        total, a level relative to the first bar).
    """
    finite = full[np.isfinite(full)]
    scale = float(fit_robust(finite[:, None], ("x",)).scale[0]) if finite.size else 1.0
    need = 0
    for s, part in later.items():
        diff = np.abs(part - full[s:]) / scale  # [T - s]
        bad = np.flatnonzero(~(diff <= tol))  # NaN counts as bad
        if bad.size and bad[-1] == len(part) - 1:
            return None
        need = max(need, int(bad[-1]) + 1 if bad.size else 0)
    return need
