"""The catalog's promises, checked over every feature: no look-ahead, declared warm-up,
scale-free values, and the required groups and patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xtune.errors import FeatureError
from xtune.features import CATALOG, GROUPS, Bars, Feature, compute_features, resolve, warmup_of
from xtune.features.registry import register  # to plant a deliberately leaky feature

CUTS = (150, 611, 1234)


def lookahead_violations(bars: Bars, names: tuple[str, ...], cuts: tuple[int, ...]) -> list[str]:
    """Features whose values on rows < t change when bars from t on are added."""
    full = compute_features(bars, names).to_numpy()
    problems = []
    for t in cuts:
        part = compute_features(bars.head(t), names).to_numpy()
        for j, name in enumerate(names):
            w = CATALOG[name].warmup
            a, b = part[w:t, j], full[w:t, j]
            if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=False):
                row = w + int(np.flatnonzero(~np.isclose(a, b, rtol=1e-9, atol=1e-12))[0])
                problems.append(
                    f"{name}: row {row} is {a[row - w]} on bars[:{t}], {b[row - w]} on all"
                )
    return problems


@pytest.mark.parametrize("source", ["synthetic", "eurusd"])
def test_no_feature_looks_ahead(source: str, bars: Bars, request: pytest.FixtureRequest) -> None:
    data = bars if source == "synthetic" else request.getfixturevalue("eurusd")
    assert lookahead_violations(data, tuple(CATALOG), CUTS) == []


def test_the_lookahead_check_catches_a_leaky_feature(bars: Bars) -> None:
    """Guard the guard: a feature that peeks one bar ahead must be reported."""
    name = "test_leaky_next_return"
    register(name, "returns", 1, "peeks at the next close")(
        lambda b: np.log(b["close"].shift(-1) / b["close"])
    )
    try:
        problems = lookahead_violations(bars, (name,), CUTS)
    finally:
        from xtune.features import registry

        registry._REGISTRY.pop(name, None)
    assert len(problems) == len(CUTS)
    assert all(p.startswith(name) for p in problems)


def test_declared_warmup_covers_every_invalid_row(bars: Bars, eurusd: Bars) -> None:
    for data in (bars, eurusd):
        values = compute_features(data, tuple(CATALOG))
        for name, feature in CATALOG.items():
            tail = values[name].to_numpy()[feature.warmup :]
            assert np.isfinite(tail).all(), f"{name}: non-finite after warm-up {feature.warmup}"


def test_library_fill_values_fall_inside_the_warmup(bars: Bars) -> None:
    """TA-Lib writes 0 during its lookback: those rows must be NaN (dropped), not 'no pattern'."""
    values = compute_features(bars, resolve(groups=["pattern"]))
    for name in values.columns:
        assert np.isnan(values[name].to_numpy()[: CATALOG[name].warmup]).all(), name


def test_every_feature_is_scale_free(bars: Bars, eurusd: Bars) -> None:
    """Prices x1024 and volume x8 (exact in binary floating point) change no feature."""
    for data in (bars, eurusd):
        scaled = data.frame.copy()
        scaled[["open", "high", "low", "close"]] *= 1024.0
        scaled["volume"] *= 8.0
        a = compute_features(data, tuple(CATALOG))
        b = compute_features(Bars(scaled, "scaled"), tuple(CATALOG))
        w = warmup_of(tuple(CATALOG))
        for name in CATALOG:
            np.testing.assert_allclose(
                b[name].to_numpy()[w:], a[name].to_numpy()[w:], rtol=1e-6, atol=1e-9, err_msg=name
            )


def test_features_stay_in_a_scaler_friendly_range(eurusd: Bars) -> None:
    """No level or running total sneaks in: every feature stays far below the 1e8 of raw OBV."""
    values = compute_features(eurusd, tuple(CATALOG)).iloc[warmup_of(tuple(CATALOG)) :]
    worst = values.abs().max()
    assert (worst < 1e3).all(), worst[worst >= 1e3].to_dict()


def test_feature_values_do_not_drift_with_the_price_level() -> None:
    """Stationarity check: on a random walk whose price triples, each feature's typical size in
    the last quarter stays within 4x of the first quarter."""
    from xtune.features import load_bars
    from xtune.features.sample import synthetic_bars

    frame = synthetic_bars(8000, seed=5, momentum=0.0)
    frame[["open", "high", "low", "close"]] *= np.exp(np.linspace(0, 1.1, len(frame)))[:, None]
    values = compute_features(load_bars(frame), tuple(CATALOG)).iloc[warmup_of(tuple(CATALOG)) :]
    q = len(values) // 4
    for name in CATALOG:
        if CATALOG[name].group in ("pattern", "calendar"):
            continue
        first = values[name].iloc[:q].abs().median()
        last = values[name].iloc[-q:].abs().median()
        if max(first, last) < 1e-9:
            continue
        assert 0.25 < (last + 1e-12) / (first + 1e-12) < 4.0, (name, first, last)


def test_catalog_has_every_group_and_ten_candlestick_patterns() -> None:
    groups = {f.group for f in CATALOG.values()}
    assert groups == set(GROUPS)
    patterns = [f for f in CATALOG.values() if f.group == "pattern"]
    assert len(patterns) >= 10
    talib_names = {f.params["talib"] for f in patterns}
    for required in ("CDLDOJI", "CDLHAMMER", "CDLSHOOTINGSTAR", "CDLENGULFING", "CDLHARAMI",
                     "CDLMORNINGSTAR", "CDLEVENINGSTAR", "CDL3WHITESOLDIERS", "CDL3BLACKCROWS"):  # fmt: skip
        assert required in talib_names
    assert all(isinstance(f, Feature) and f.doc for f in CATALOG.values())


def test_left_out_indicators_stay_out() -> None:
    """KST, visual Ichimoku and PSAR look ahead or misbehave in ta 0.11; raw OBV/A/D are levels."""
    for name in CATALOG:
        assert not any(banned in name for banned in ("kst", "psar", "nvi", "ichimoku_a", "visual"))
        # cumulative levels only as trailing changes (obv_change_20), never the level itself
        assert name not in ("obv", "adi", "vpt", "close", "open", "sma_10")
        if name.startswith(("obv", "adi", "vpt")):
            assert "_change_" in name, name


def test_resolve_names_and_groups() -> None:
    assert resolve(["rsi_14", "ret_1"]) == ("ret_1", "rsi_14")  # catalog order
    momentum = resolve(groups=["momentum"])
    assert momentum and all(CATALOG[n].group == "momentum" for n in momentum)
    assert resolve() == tuple(CATALOG)
    with pytest.raises(FeatureError, match="xtune features list"):
        resolve(["rsi_99"])
    with pytest.raises(FeatureError, match="groups are"):
        resolve(groups=["astrology"])
    assert warmup_of(["ret_1", "sma_ratio_100"]) == 99


def test_calendar_features_use_the_bar_time() -> None:
    idx = pd.date_range("2024-01-01 06:00", periods=3, freq="6h", tz="UTC")
    frame = pd.DataFrame(
        {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=idx
    )
    hour = CATALOG["hour_sin"].compute(frame).to_numpy()
    np.testing.assert_allclose(hour, [1.0, 0.0, -1.0], atol=1e-12)
