"""The whole data side in one call: bars -> features -> labels -> split -> scaler -> windows.

``prepare(bars, spec)`` returns a :class:`Dataset` whose folds each carry their own scaler
(fit on that fold's training rows only) and one contiguous float32 array that windows view
without copying.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xtune.errors import SpecError
from xtune.features._windows import windows_ending_at
from xtune.features.bars import Bars
from xtune.features.build import build_features
from xtune.features.catalog import CATALOG
from xtune.features.feature_set import FeatureSet
from xtune.features.labels import MISSING, LabelSpec, directions, forward_returns
from xtune.features.scaler import RobustScaler, fit_robust, transform
from xtune.features.split import Split, SplitSpec, chronological_split, min_rows


@dataclass(frozen=True)
class DataSpec:
    """Everything that turns bars into training windows.

    Attributes:
        features: feature names (empty: every feature of the feature set it is used with).
        window: bars per window (the window ending at bar t predicts t -> t + h).
        labels: horizons and classes.
        split: fractions, purge and folds.
        clip: scaled values are clipped to [-clip, clip].
        first_row: the first bar (row of the bars) a feature row may come from; 0 means right
            after the features' own warm-up. A search sets it to the widest candidate warm-up,
            so every trial, and the replay of any of them, splits the very same rows.
    """

    features: tuple[str, ...] = ()
    window: int = 60
    labels: LabelSpec = field(default_factory=LabelSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    clip: float = 5.0
    first_row: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise SpecError(f"window must be >= 1, got {self.window}.")
        if self.first_row < 0:
            raise SpecError(f"first_row must be >= 0, got {self.first_row}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        """Inverse of :meth:`to_dict`."""
        labels = d["labels"]
        return cls(
            features=tuple(d["features"]),
            window=int(d["window"]),
            labels=LabelSpec(tuple(labels["horizons"]), labels["dead_zone"], labels["classes"]),
            split=SplitSpec(**d["split"]),
            clip=float(d["clip"]),
            first_row=int(d["first_row"]),
        )

    def feature_names(self, feature_set: FeatureSet = CATALOG) -> tuple[str, ...]:
        """Its features in ``feature_set``'s order (checked to be there)."""
        return feature_set.resolve(self.features or None)

    def min_bars(self, feature_set: FeatureSet = CATALOG) -> int:
        """Bars needed for warm-up + window + horizon + purge gaps + minimal parts."""
        rows = min_rows(self.window, self.labels.max_horizon, self.split)
        return max(feature_set.warmup_of(self.feature_names(feature_set)), self.first_row) + rows


@dataclass(frozen=True)
class Part:
    """Windows and labels of one train/val/test part; ``x`` is a view, not a copy."""

    x: np.ndarray  # [N, L, F] float32 view
    direction: np.ndarray  # [N, H] int64
    returns: np.ndarray  # [N, H] float32
    ends: range  # row of each window's last bar
    times: pd.DatetimeIndex  # time of each window's last bar

    def __len__(self) -> int:
        return len(self.ends)


@dataclass(frozen=True)
class ScaledFold:
    """One fold: a scaler fit on its training rows, and the whole array scaled by it."""

    x: np.ndarray  # [rows, F] float32, C-contiguous
    scaler: RobustScaler
    train: range
    val: range


@dataclass(frozen=True)
class Dataset:
    spec: DataSpec
    source: str
    data_sha256: str
    features: tuple[str, ...]
    times: pd.DatetimeIndex  # [rows], time of each feature row
    raw: np.ndarray  # [rows, F] float64 unscaled features
    direction: np.ndarray  # [rows, H] int64, MISSING where no label
    returns: np.ndarray  # [rows, H] float32, NaN where no label
    split: Split
    folds: tuple[ScaledFold, ...]

    def part(self, fold: ScaledFold, ends: range) -> Part:
        return Part(
            x=windows_ending_at(fold.x, self.spec.window, ends),
            direction=self.direction[ends.start : ends.stop],
            returns=self.returns[ends.start : ends.stop],
            ends=ends,
            times=self.times[ends.start : ends.stop],
        )

    def train(self, k: int = 0) -> Part:
        return self.part(self.folds[k], self.folds[k].train)

    def val(self, k: int = 0) -> Part:
        return self.part(self.folds[k], self.folds[k].val)

    def final(self) -> tuple[ScaledFold, Part]:
        """Refit on all development rows and open the untouched test part.

        For the final model only (export); a search that calls this is no longer honest.
        """
        dev = self.split.development
        fold = _scaled_fold(self.raw, self.features, self.spec.clip, dev, self.split.test)
        return fold, self.part(fold, self.split.test)

    def summary(self) -> dict[str, Any]:
        f0 = self.folds[0]
        return {
            "source": self.source,
            "data_sha256": self.data_sha256,
            "rows": len(self.times),
            "features": len(self.features),
            "window": self.spec.window,
            "horizons": list(self.spec.labels.horizons),
            "folds": len(self.folds),
            "train": len(f0.train),
            "val": len(f0.val),
            "test": len(self.split.test),
            "gap": self.split.gap,
            "window_bytes": int(f0.x.nbytes),
        }


def _scaled_fold(
    raw: np.ndarray, names: tuple[str, ...], clip: float, train: range, val: range
) -> ScaledFold:
    # Fit on rows up to the last training window's last bar: nothing later reaches the scaler.
    scaler = fit_robust(raw[: train.stop], names, clip)
    return ScaledFold(transform(raw, scaler), scaler, train, val)


def _feature_frame(
    bars: Bars,
    spec: DataSpec,
    names: tuple[str, ...],
    features: pd.DataFrame | None,
    feature_set: FeatureSet,
    cache_dir: Path | None,
    use_cache: bool,
    progress: bool,
) -> tuple[pd.DataFrame, int]:
    """The spec's feature columns from its first row on, and that row's index in the bars."""
    if features is None:
        frame = build_features(
            bars,
            names,
            feature_set=feature_set,
            cache_dir=cache_dir,
            use_cache=use_cache,
            progress=progress,
        )
    else:
        # A wider candidate set may start later than this list's own warm-up: that is fine,
        # as long as the frame is a tail of these very bars.
        frame = features.loc[:, list(names)]
        if not frame.index.equals(bars.index[len(bars) - len(frame) :]):
            raise SpecError("the given feature frame was not built from these bars.")
    start = len(bars) - len(frame)
    if spec.first_row > start:
        frame, start = frame.iloc[spec.first_row - start :], spec.first_row
    return frame, start


def prepare(
    bars: Bars,
    spec: DataSpec,
    *,
    feature_set: FeatureSet = CATALOG,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
    features: pd.DataFrame | None = None,
) -> Dataset:
    """Bars -> ready-to-train folds.

    Args:
        bars: validated bars.
        spec: features, window, labels, split.
        feature_set: where the spec's feature names are looked up (a study's, with its
            plugins and columns; default the built-in catalog).
        features: an already built feature frame of these bars with (at least) the spec's
            columns; a search builds the candidate set once and passes it to every trial.

    Raises:
        SpecError: too few bars for the spec (the message gives the number needed).

    Example:
        >>> from xtune.features import load_bars
        >>> ds = prepare(load_bars("sample:synthetic"), DataSpec(features=("ret_1", "rsi_14"), window=16))
        >>> ds.train().x.shape[1:]
        (16, 2)
    """
    names = spec.feature_names(feature_set)
    need = spec.min_bars(feature_set)
    if len(bars) < need:
        raise SpecError(
            f"{bars.source}: {len(bars)} bars, but this setup needs at least {need}: "
            f"{max(feature_set.warmup_of(names), spec.first_row)} warm-up bars for the features, window {spec.window}, horizon "
            f"{spec.labels.max_horizon}, purge gaps and {spec.split.min_samples}+ samples per part. "
            "Use more bars, a shorter window, or fewer long-window features."
        )
    frame, start = _feature_frame(
        bars, spec, names, features, feature_set, cache_dir, use_cache, progress
    )
    close = bars.frame["close"].to_numpy()
    ret = forward_returns(close, spec.labels.horizons)[start:]
    direction = directions(ret, spec.labels)
    raw = np.ascontiguousarray(frame.to_numpy(np.float64))
    split = chronological_split(len(raw), spec.window, spec.labels.max_horizon, spec.split)
    folds = tuple(_scaled_fold(raw, names, spec.clip, f.train, f.val) for f in split.folds)
    assert (direction[split.development.start : split.test.stop] != MISSING).all()
    return Dataset(
        spec=spec,
        source=bars.source,
        data_sha256=bars.sha256,
        features=names,
        times=pd.DatetimeIndex(frame.index),
        raw=raw,
        direction=direction,
        returns=ret.astype(np.float32),
        split=split,
        folds=folds,
    )
