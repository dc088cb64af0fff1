"""Declared memories, checked on real bars: a feature computed from a later start agrees with the
one computed from the first bar, to 1e-6 of its training scale (the robust scaler's IQR / 1.349,
or its largest deviation for a mostly constant column), on every row at least its memory after
the later start."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xtune.errors import FeatureError
from xtune.features import CATALOG, Bars, build_features, fit_robust, history_of, load_bars, resolve
from xtune.features.build import latest_features
from xtune.features.history import memory_violations
from xtune.features.registry import smoothing_memory

SMOOTHED = ("rsi_14", "atr_14", "adx_14", "macd_signal", "ema_ratio_26", "kama_ratio", "pvo")


@pytest.mark.parametrize("source", ["eurusd", "goog", "synthetic"])
def test_every_feature_forgets_its_start_within_its_memory(
    source: str, bars: Bars, request: pytest.FixtureRequest
) -> None:
    if source == "synthetic":
        data = bars  # 1,500 bars: starts that leave the longest memory (400) rows to check
        starts: tuple[int, ...] = (1, 17, 250, 700)
    else:
        data = request.getfixturevalue("eurusd") if source == "eurusd" else _goog()
        starts = (1, 17, 250, 900, 1500)
    assert memory_violations(data, tuple(CATALOG), starts) == []


def _goog() -> Bars:
    pytest.importorskip("backtesting")
    return load_bars("sample:goog")


def test_a_too_short_memory_is_caught(eurusd: Bars) -> None:
    """Guard the guard: declaring a smoothed feature's memory as its warm-up must fail."""
    short = {name: CATALOG[name].warmup for name in SMOOTHED}
    problems = memory_violations(eurusd, SMOOTHED, (1, 250), memory=short)
    caught = {p.split(":")[0] for p in problems}
    assert caught == set(SMOOTHED), problems
    assert memory_violations(eurusd, SMOOTHED, (1, 250)) == []  # the declared ones hold


def test_a_start_that_leaves_no_row_to_check_is_reported(bars: Bars) -> None:
    problems = memory_violations(bars, ["kama_ratio"], (1300,))
    assert problems == ["kama_ratio: no row 400 bars after start 1300 in 1500 bars"]


def test_memory_defaults_to_the_warmup_of_finite_windows() -> None:
    for name in ("ret_24", "sma_ratio_100", "bb_pct", "obv_change_20", "hour_sin"):
        assert CATALOG[name].memory == CATALOG[name].warmup, name
    for name in resolve(groups=["pattern"]):  # TA-Lib patterns look at a fixed trailing span
        assert CATALOG[name].memory == CATALOG[name].warmup, name
    for name in SMOOTHED:
        assert CATALOG[name].memory > 2 * CATALOG[name].warmup, name
    assert all(f.memory >= f.warmup for f in CATALOG.values())


def test_history_of_a_feature_list() -> None:
    assert history_of([]) == 0
    assert history_of(["ret_1", "sma_ratio_100"]) == 99
    assert history_of(["ret_1", "rsi_14", "sma_ratio_100"]) == CATALOG["rsi_14"].memory
    assert history_of(CATALOG) == max(f.memory for f in CATALOG.values())


def test_smoothing_memory_matches_the_closed_form() -> None:
    """One stage: the seed's weight (1 - alpha)^m falls under 1e-8 first at m."""
    for alpha in (2 / 13, 2 / 27, 1 / 14, 1 / 6):
        m = smoothing_memory(alpha)
        assert m == math.ceil(math.log(1e-8) / math.log(1 - alpha)), alpha
        assert (1 - alpha) ** m < 1e-8 <= (1 - alpha) ** (m - 1)
    assert smoothing_memory(1 / 14, stages=2) > smoothing_memory(1 / 14)


def test_latest_features_equal_the_full_build_on_their_rows(eurusd: Bars) -> None:
    """The live bot's path: each feature over only its memory + the newest rows."""
    names, rows = tuple(CATALOG), 64
    full = build_features(eurusd, names, use_cache=False)
    latest = latest_features(eurusd, names, rows)
    assert latest.index.equals(full.index[-rows:]) and list(latest.columns) == list(names)
    scale = fit_robust(full.to_numpy(), names).scale
    assert (np.abs(latest.to_numpy() - full.to_numpy()[-rows:]) / scale).max() <= 1e-6
    with pytest.raises(FeatureError, match=f"need {history_of(names) + rows}"):
        latest_features(eurusd.head(history_of(names) + rows - 1), names, rows)
