"""Check features against the catalog's promises on given bars, one feature at a time.

The checks (the catalog's tests, ``xtune features audit`` and the search's pre-flight all run
this one implementation):

- **look-ahead**: values on rows < t are the same whether computed on ``bars[:t]`` or on all
  bars, for several cut points t; a failure names the first row that differs. A trader's own
  (plugin) feature is cut at many points (:mod:`xtune.features._cuts`: late, calendar and
  random ones), and each of its computations runs apart from every other: a fresh run of the
  plugin's bytes (:func:`~xtune.features.plugins.fresh_feature`) on a copy of the bars, so a
  memo or counter kept between calls cannot hand a truncated call the full bars' values.
- **warm-up**: every value after the declared warm-up is finite, and a TA-Lib feature's rows
  before it are NaN (TA-Lib writes 0 during its lookback, which must not read as "no pattern").
- **scale**: values stay below ``MAX_ABS`` after warm-up; prices x1024 and volume x8 (exact in
  binary floating point) change no value; and on a random walk whose price triples, the typical
  size in the last quarter stays within ``MAX_DRIFT`` x of the first quarter (skipped for the
  pattern and calendar groups, whose values are codes, not magnitudes, and for precomputed
  columns, which the walk lacks).
- **memory** (plugin features): computed from later starts, the values agree with those from
  the first bar within the declared memory (:func:`~xtune.features.history.memory_needed`);
  else the live history would be too short, and the failure names the memory to declare.

A precomputed column (``[features] columns``) passes the look-ahead check by construction:
it is read, not computed, so xtune cannot prove it causal: the report says so
(:attr:`AuditReport.unproven`) instead of calling it a pass. The same holds for a plugin feature
that opens a file while it computes (:mod:`xtune.features.reads`): a lookup by bar time survives
truncation whatever the file holds; :attr:`FeatureAudit.reads` names the files.

Example:
    >>> from xtune.features import load_bars
    >>> from xtune.features._audit import audit
    >>> report = audit(["ret_1", "rsi_14"], load_bars("sample:synthetic"))
    >>> report.failures
    ()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from rich.progress import track

from xtune.errors import FeatureError
from xtune.features._cuts import own_cuts, spread_cuts
from xtune.features.bars import Bars
from xtune.features.catalog import CATALOG
from xtune.features.feature_set import FeatureSet
from xtune.features.history import memory_needed, memory_starts
from xtune.features.plugins import fresh_feature
from xtune.features.registry import COLUMN_GROUP, COLUMN_ORIGIN, PLUGIN, Feature

PRICE_SCALE, VOLUME_SCALE = 1024.0, 8.0
MAX_ABS = 1e3  # features are ratios and oscillators; a level or running total is far larger
MAX_DRIFT = 4.0
UNSCALED_GROUPS = ("pattern", "calendar", COLUMN_GROUP)  # exempt from the drift check
# (a precomputed column has no value on the synthetic walk the drift check uses)
_RTOL, _ATOL = 1e-9, 1e-12  # look-ahead: the same code on the same rows agrees to rounding
_SCALE_RTOL, _SCALE_ATOL = 1e-6, 1e-9
_ADVISED_TOL = 1e-8  # of its scale: the memory to declare, with the catalog's 100x margin


@dataclass(frozen=True)
class FeatureAudit:
    """One feature's results; each check is None when it passed, else what failed."""

    name: str
    group: str
    warmup: int
    lookahead: str | None
    warmup_check: str | None
    scale: str | None
    memory: str | None = None
    memory_need: int | None = None  # bars, as measured on these bars (None: not measured)
    cuts: int = 0  # how many cut points the look-ahead check compared at
    unproven: str | None = None  # why no audit can prove it causal (None: the checks can)
    reads: tuple[str, ...] = ()  # files a plugin feature opened while it computed

    @property
    def problems(self) -> tuple[str, ...]:
        """The failed checks, each as ``"<name>: <check>: <what>"``."""
        checks = (
            ("look-ahead", self.lookahead),
            ("warm-up", self.warmup_check),
            ("scale", self.scale),
            ("memory", self.memory),
        )
        return tuple(f"{self.name}: {check}: {what}" for check, what in checks if what)


@dataclass(frozen=True)
class AuditReport:
    """The audit of some features on one set of bars."""

    source: str
    rows: int
    cuts: tuple[int, ...]
    features: tuple[FeatureAudit, ...]
    own_cuts: tuple[int, ...] = ()  # where plugin features are cut (see xtune.features._cuts)

    @property
    def failures(self) -> tuple[str, ...]:
        """Every failed check of every feature, in the set's order; empty when all passed."""
        return tuple(p for f in self.features for p in f.problems)

    @property
    def unproven(self) -> tuple[str, ...]:
        """One line per feature that passed but that no audit can prove causal, and why."""
        return tuple(
            f"{f.name}: cannot prove it causal: {f.unproven}"
            for f in self.features
            if f.unproven and not f.problems
        )


def default_cuts(rows: int, warmup: int) -> tuple[int, ...]:
    """Cut points spread over the bars, each leaving rows after the warm-up to compare."""
    if rows < warmup + 3:
        raise FeatureError(
            f"{rows} bars: the audited features need {warmup} bars of warm-up and a few more "
            "to check. Use more bars."
        )
    return spread_cuts(rows, warmup)


def audit(
    names: Iterable[str],
    bars: Bars,
    *,
    feature_set: FeatureSet = CATALOG,
    cuts: Sequence[int] | None = None,
    progress: bool = False,
) -> AuditReport:
    """Run every check on each listed feature of ``feature_set`` over ``bars``.

    Args:
        names: features to audit (output in the feature set's order).
        bars: the bars to check them on, e.g. a study's data.
        feature_set: where ``names`` are looked up (a study's, with its plugins and columns;
            default the built-in catalog).
        cuts: where the look-ahead check truncates the bars (default :func:`default_cuts`,
            and for plugin features :func:`~xtune.features._cuts.own_cuts`).
        progress: show a progress bar, one step per feature.

    Raises:
        FeatureError: an unknown feature name, too few bars for the warm-up, or cut points
            outside the bars.
    """
    listed = feature_set.resolve(list(names))
    warmup = feature_set.warmup_of(listed)
    shared = tuple(cuts) if cuts is not None else default_cuts(len(bars), warmup)
    if not all(0 < t <= len(bars) for t in shared):
        raise FeatureError(f"cut points {shared} must lie within the {len(bars)} bars.")
    own = shared
    if cuts is None and any(_is_plugin(feature_set[n]) for n in listed):
        own = own_cuts(bars.index, warmup)
    drift_from = feature_set.warmup_of(feature_set)  # the walk's rows every feature has
    frame = bars.frame
    scaled = frame.copy()
    scaled[["open", "high", "low", "close"]] *= PRICE_SCALE
    scaled["volume"] *= VOLUME_SCALE
    results = []
    for name in track(listed, description="audit", disable=not progress, transient=True):
        feature = feature_set[name]
        at = own if _is_plugin(feature) else shared
        results.append(_audit_one(feature, frame, scaled, at, drift_from))
    return AuditReport(bars.source, len(bars), shared, tuple(results), own)


def _audit_one(
    feature: Feature,
    frame: pd.DataFrame,
    scaled: pd.DataFrame,
    cuts: Sequence[int],
    drift_from: int,
) -> FeatureAudit:
    """One feature's checks; a plugin that raises fails its audit instead of ending it."""
    f = feature
    try:
        full = _values(f, frame)
        lookahead, warmup = _lookahead(f, full, frame, cuts), _warmup(f, full)
        scale = _scale(f, full, _values(f, scaled), drift_from)
        memory, need = None, None
        if _is_plugin(f) and not (lookahead or warmup):
            memory, need = _memory(f, frame, full)
    except FeatureError as exc:
        return FeatureAudit(f.name, f.group, f.warmup, str(exc), None, None, cuts=len(cuts))
    reads = _reads(f)
    return FeatureAudit(
        f.name,
        f.group,
        f.warmup,
        lookahead,
        warmup,
        scale,
        memory,
        need,
        len(cuts),
        _unproven(f, reads),
        reads,
    )


def _is_plugin(feature: Feature) -> bool:
    return feature.origin.startswith(PLUGIN)


def _unproven(feature: Feature, reads: tuple[str, ...]) -> str | None:
    """Why no audit can prove ``feature`` causal, whatever its values show; None when the
    checks can (its code is computed here, on the bars alone)."""
    if feature.origin == COLUMN_ORIGIN:
        return "a precomputed column, read from the bars file, not computed"
    if reads:  # a lookup by bar time survives any truncation, whatever the file holds
        return f"reads {', '.join(reads)}"
    return None


def _reads(feature: Feature) -> tuple[str, ...]:
    """The files the feature opened while the audit (or an earlier build) computed it."""
    return feature.reads.paths or () if feature.reads is not None else ()


def preflight(names: Iterable[str], bars: Bars, feature_set: FeatureSet) -> AuditReport | None:
    """Audit the trader's own features of ``feature_set`` among ``names`` (plugins and
    columns) before a search trains anything; None when there are none.

    Raises:
        FeatureError: naming the first failed check (the feature, the row, the values) and
            how to see them all.
    """
    own = [n for n in names if feature_set[n].origin]
    if not own:
        return None
    report = audit(own, bars, feature_set=feature_set)
    if report.failures:
        raise FeatureError(
            f"{bars.source}: your own feature fails the catalog's checks: "
            f"{report.failures[0].rstrip('.')}"
            f"{f' (and {len(report.failures) - 1} more)' if len(report.failures) > 1 else ''}. "
            "Fix it or leave it out; `xtune features audit STUDY.toml` prints every check."
        )
    return report


def _values(feature: Feature, frame: pd.DataFrame) -> np.ndarray:
    """The feature on ``frame``, a plugin's from a fresh run of its code (no state carried
    from any other call) on a copy of the bars (see :meth:`Feature.values`)."""
    return fresh_feature(feature).values(frame)


def _memory(
    feature: Feature, frame: pd.DataFrame, full: np.ndarray
) -> tuple[str | None, int | None]:
    """The plugin feature's memory measured on ``frame``, and what is wrong with its
    declaration: a shorter one leaves the live bot's history too short, so its values would
    differ from training's."""
    starts = memory_starts(len(frame), feature.warmup)
    later = {s: _values(feature, frame.iloc[s:]) for s in starts}
    need = memory_needed(full, later)
    if need is None:
        return (
            f"its values depend on where computation starts for all {len(frame)} bars (a "
            "running total, or a level relative to the first bar?): no live history gives "
            "training's values",
            None,
        )
    declared = max(feature.memory, feature.warmup)
    if need <= declared:
        return None, need
    advised = max(need, memory_needed(full, later, tol=_ADVISED_TOL) or need)
    return (
        f"its values depend on where computation starts for {need} bars (to 1e-6 of its "
        f"scale), more than its memory {declared}, so the live bot's history would be too "
        f"short; add memory={advised} to its @register(...)",
        need,
    )


def _lookahead(
    feature: Feature, full: np.ndarray, frame: pd.DataFrame, cuts: Sequence[int]
) -> str | None:
    """The first row (over all cuts) whose value changes when later bars are added."""
    w = feature.warmup
    first: tuple[int, int, float, float] | None = None
    for t in cuts:
        part = _values(feature, frame.iloc[:t])
        a, b = part[w:t], full[w:t]
        differ = np.flatnonzero(~np.isclose(a, b, rtol=_RTOL, atol=_ATOL, equal_nan=True))
        if differ.size and (first is None or w + differ[0] < first[0]):
            row = w + int(differ[0])
            first = (row, t, float(part[row]), float(full[row]))
    if first is None:
        return None
    row, t, a_row, b_row = first
    return f"row {row} ({frame.index[row]}) is {a_row:.6g} on bars[:{t}], {b_row:.6g} on all bars"


def _warmup(feature: Feature, full: np.ndarray) -> str | None:
    """Non-finite values after the warm-up, or a library's fill values left before it."""
    w = feature.warmup
    bad = np.flatnonzero(~np.isfinite(full[w:]))
    if bad.size:
        return f"row {w + int(bad[0])} is {full[w + int(bad[0])]} after warm-up {w}"
    if "talib" in feature.params:
        filled = np.flatnonzero(~np.isnan(full[:w]))
        if filled.size:
            return f"row {int(filled[0])} is {full[filled[0]]:.6g} inside warm-up {w}, not NaN"
    return None


def _scale(feature: Feature, full: np.ndarray, scaled: np.ndarray, drift_from: int) -> str | None:
    """Too large, changed by the price/volume unit, or drifting with the price level."""
    w = feature.warmup
    values, other = full[w:], scaled[w:]
    finite = np.isfinite(values)
    if finite.any() and np.abs(values[finite]).max() >= MAX_ABS:
        return f"|value| reaches {np.abs(values[finite]).max():.4g} (limit {MAX_ABS:g})"
    close = np.isclose(other, values, rtol=_SCALE_RTOL, atol=_SCALE_ATOL, equal_nan=True)
    differ = np.flatnonzero(~close)
    if differ.size:
        row = w + int(differ[0])
        return (
            f"prices x{PRICE_SCALE:g} and volume x{VOLUME_SCALE:g} change row {row} from "
            f"{full[row]:.6g} to {scaled[row]:.6g}"
        )
    if feature.group in UNSCALED_GROUPS:
        return None
    return _drift(feature, drift_from)


def _drift(feature: Feature, drift_from: int) -> str | None:
    """The typical size of the feature's values on :func:`drifting_walk` from row
    ``drift_from`` on, in its first quarter against its last."""
    values = _values(feature, drifting_walk())[drift_from:]
    q = len(values) // 4
    first = float(np.nanmedian(np.abs(values[:q])))
    last = float(np.nanmedian(np.abs(values[-q:])))
    if max(first, last) < 1e-9:
        return None
    ratio = (last + 1e-12) / (first + 1e-12)
    if 1 / MAX_DRIFT < ratio < MAX_DRIFT:
        return None
    return f"typical size {first:.4g} -> {last:.4g} ({ratio:.3g}x) as the price triples"


@cache
def drifting_walk() -> pd.DataFrame:
    """8,000 seeded random-walk bars whose price level triples (read-only: shared by features)."""
    from xtune.features.bars import load_bars
    from xtune.features.sample import synthetic_bars

    frame = synthetic_bars(8000, seed=5, momentum=0.0)
    frame[["open", "high", "low", "close"]] *= np.exp(np.linspace(0, 1.1, len(frame)))[:, None]
    return load_bars(frame, name="drifting random walk").frame
