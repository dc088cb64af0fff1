"""Building: warm-up dropped (never filled), values checked, results cached by data hash."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xtune.errors import FeatureError
from xtune.features import CATALOG, Bars, build_features, load_bars, resolve, warmup_of
from xtune.features.build import cache_key

NAMES = ("ret_1", "rsi_14", "sma_ratio_50", "cdl_doji")


def test_warmup_rows_are_dropped_not_filled(bars: Bars, tmp_path: Path) -> None:
    frame = build_features(bars, NAMES, cache_dir=tmp_path)
    assert frame.index[0] == bars.index[warmup_of(NAMES)] == bars.index[49]
    assert len(frame) == len(bars) - 49
    assert np.isfinite(frame.to_numpy()).all()
    assert tuple(frame.columns) == resolve(NAMES)  # catalog order, whatever the input order


def _cache_files(root: Path) -> list[Path]:
    return sorted((root / "features").glob("*.parquet"))


def test_features_are_computed_once_per_data_and_list(bars: Bars, tmp_path: Path) -> None:
    first = build_features(bars, NAMES, cache_dir=tmp_path)
    (path,) = _cache_files(tmp_path)
    stamp = path.stat().st_mtime_ns
    again = build_features(bars, NAMES, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    assert path.stat().st_mtime_ns == stamp, "a cache hit must not rewrite the file"
    build_features(bars, ("ret_1",), cache_dir=tmp_path)
    assert len(_cache_files(tmp_path)) == 2, "another feature list gets its own entry"


def test_changed_data_never_hits_a_stale_cache(frame: pd.DataFrame, tmp_path: Path) -> None:
    bars = load_bars(frame)
    build_features(bars, NAMES, cache_dir=tmp_path)
    changed = frame.copy()
    changed.iloc[-1, changed.columns.get_loc("close")] = changed["low"].iloc[-1]
    other = load_bars(changed)
    assert other.sha256 != bars.sha256
    assert cache_key(other, NAMES) != cache_key(bars, NAMES)
    rebuilt = build_features(other, NAMES, cache_dir=tmp_path)
    assert (
        rebuilt["ret_1"].iloc[-1]
        != build_features(bars, NAMES, cache_dir=tmp_path)["ret_1"].iloc[-1]
    )


def test_a_torn_cache_file_is_ignored_and_rewritten(bars: Bars, tmp_path: Path) -> None:
    good = build_features(bars, NAMES, cache_dir=tmp_path)
    (path,) = _cache_files(tmp_path)
    path.write_bytes(b"PAR1 torn by a crash")
    with pytest.warns(UserWarning, match="unreadable feature cache"):
        again = build_features(bars, NAMES, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(good, again)
    pd.testing.assert_frame_equal(pd.read_parquet(path), good)
    assert not list(path.parent.glob("*.tmp"))


def test_flat_zero_volume_stretches_give_neutral_values_not_nan(frame: pd.DataFrame) -> None:
    """30 identical bars with zero volume (a halted or closed market) make many ratios 0/0:
    each such feature has a declared neutral value, so the whole catalog stays finite."""
    frozen = frame.copy()
    frozen.iloc[800:830] = frozen.iloc[[800]].to_numpy()
    frozen.iloc[800:830, frozen.columns.get_loc("volume")] = 0.0
    values = build_features(load_bars(frozen), None, use_cache=False)
    assert np.isfinite(values.to_numpy()).all()
    assert values.loc[frozen.index[829], "mfi_14"] == 0.5
    assert values.loc[frozen.index[829], "cmf_20"] == 0.0


def test_a_feature_broken_mid_series_is_reported_by_name_and_time(bars: Bars) -> None:
    from xtune.features.build import _check_values

    broken = build_features(bars, ("stoch_k", "mfi_14"), use_cache=False)
    broken.iloc[900, 0] = np.nan
    with pytest.raises(
        FeatureError, match=re.escape(f"bars.csv: feature 'stoch_k' is nan at {broken.index[900]}")
    ):
        _check_values(broken, "bars.csv")
    broken.iloc[900, 0] = 3e15
    with pytest.raises(FeatureError, match="'stoch_k' is 3e\\+15"):
        _check_values(broken, "bars.csv")


def test_too_few_bars_for_the_warmup(frame: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="need 99 bars of warm-up"):
        build_features(load_bars(frame.iloc[:80]), ("sma_ratio_100",), use_cache=False)


def test_every_catalog_feature_builds_on_real_bars(eurusd: Bars, tmp_path: Path) -> None:
    frame = build_features(eurusd, None, cache_dir=tmp_path)
    assert tuple(frame.columns) == tuple(CATALOG)
    assert len(frame) == len(eurusd) - warmup_of(tuple(CATALOG))
