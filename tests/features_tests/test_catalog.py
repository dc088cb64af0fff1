"""The catalog's promises, checked over every feature by the audit that `xtune features audit`
runs (xtune/features/_audit.py): no look-ahead, declared warm-up, scale-free values; and the
required groups and every TA-Lib candlestick pattern."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from talib import abstract

from xtune.errors import FeatureError
from xtune.features import (
    CATALOG,
    GROUPS,
    Bars,
    Feature,
    compute_features,
    load_bars,
    resolve,
    warmup_of,
)
from xtune.features._audit import AuditReport, audit
from xtune.features.sample import synthetic_bars

CUTS = (150, 611, 1234)

# The first 17 patterns, in their order: bundles and studies name them, so they never move.
FIRST_PATTERNS = (
    "doji", "dragonfly_doji", "gravestone_doji", "hammer", "inverted_hammer", "hanging_man",
    "shooting_star", "engulfing", "harami", "piercing", "dark_cloud_cover", "morning_star",
    "evening_star", "three_white_soldiers", "three_black_crows", "marubozu", "spinning_top",
)  # fmt: skip


@pytest.fixture(scope="module", params=["synthetic", "eurusd"])
def report(request: pytest.FixtureRequest) -> AuditReport:
    """The whole catalog audited once per module on each data set."""
    if request.param == "synthetic":
        bars = load_bars(synthetic_bars(1500, seed=3), name="synthetic")
    else:
        bars = request.getfixturevalue("eurusd")
    return audit(CATALOG, bars, cuts=CUTS)


def test_no_feature_looks_ahead(report: AuditReport) -> None:
    assert report.cuts == CUTS and len(report.features) == len(CATALOG)
    assert [f"{f.name}: {f.lookahead}" for f in report.features if f.lookahead] == []


def test_declared_warmup_covers_every_invalid_row(report: AuditReport) -> None:
    """Finite after the warm-up; TA-Lib's fill values (0 during its lookback) inside it."""
    assert [f"{f.name}: {f.warmup_check}" for f in report.features if f.warmup_check] == []


def test_library_fill_values_fall_inside_the_warmup(bars: Bars) -> None:
    """TA-Lib writes 0 during its lookback: those rows must be NaN (dropped), not 'no pattern'."""
    values = compute_features(bars, resolve(groups=["pattern"]))
    for name in values.columns:
        assert np.isnan(values[name].to_numpy()[: CATALOG[name].warmup]).all(), name


def test_every_feature_is_scale_free(report: AuditReport) -> None:
    """Below 1e3, unchanged by prices x1024 and volume x8, no drift with the price level."""
    assert [f"{f.name}: {f.scale}" for f in report.features if f.scale] == []
    assert report.failures == ()


def test_patterns_read_between_minus_one_and_one(eurusd: Bars) -> None:
    """TA-Lib's +-100 reads +-1; the Hikkakes' +-200 confirmation reads +-1, their pattern +-0.5."""
    names = resolve(groups=["pattern"])
    values = compute_features(eurusd, names).iloc[warmup_of(names) :]
    assert (values.abs().max() <= 1.0).all()
    assert set(np.unique(values["cdl_hikkake"])) == {-1.0, -0.5, 0.0, 0.5, 1.0}
    assert set(np.unique(values["cdl_engulfing"])) == {-1.0, -0.8, 0.0, 0.8, 1.0}
    assert CATALOG["cdl_hikkake"].params["full_scale"] == 200


def test_catalog_has_every_group_and_every_candlestick_pattern() -> None:
    groups = {f.group for f in CATALOG.values()}
    assert groups == set(GROUPS)
    patterns = [f for f in CATALOG.values() if f.group == "pattern"]
    by_function = {f.params["talib"]: f for f in patterns}
    missing = sorted(set(talib.get_function_groups()["Pattern Recognition"]) - set(by_function))
    assert missing == [], f"TA-Lib patterns missing from the catalog: {missing}"
    assert len(patterns) == len(by_function) == 61
    assert [f.name for f in patterns[:17]] == [f"cdl_{n}" for n in FIRST_PATTERNS]
    names = list(CATALOG)
    assert names.index("cdl_spinning_top") + 1 == names.index("cdl_two_crows")  # the rest after
    for f in patterns[17:]:  # TA-Lib's defaults, recorded so the export manifest carries them
        defaults = dict(abstract.Function(f.params["talib"]).parameters)  # type: ignore[attr-defined]
        assert {k: f.params[k] for k in defaults} == defaults, f.name
    assert CATALOG["cdl_mat_hold"].params["penetration"] == 0.5
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
