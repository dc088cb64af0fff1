"""A trader's own features: plugin files and precomputed columns, held to the catalog's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xtune.errors import DataError, FeatureError
from xtune.features import CATALOG, Bars, audit, build_features, load_bars
from xtune.features._audit import preflight
from xtune.features._cuts import own_cuts

CAUSAL = """
from xtune.features import register


@register("my_range_z", "volatility", 19, "bar range z-scored over 20 bars", window=20)
def my_range_z(bars):
    r = (bars["high"] - bars["low"]) / bars["close"]
    return (r - r.rolling(20).mean()) / r.rolling(20).std()
"""

LEAKY = """
from xtune.features import register


@register("my_tomorrow", "returns", 0, "next bar's return: a planted leak")
def my_tomorrow(bars):
    return bars["close"].shift(-1) / bars["close"] - 1.0
"""


def plugin_file(folder: Path, text: str = CAUSAL, name: str = "my_features.py") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_causal_plugin_feature_joins_a_feature_set_with_its_hash_and_passes_the_audit(
    tmp_path: Path, bars: Bars
) -> None:
    features = CATALOG.with_plugins([plugin_file(tmp_path)])
    (plugin,) = features.plugins
    assert plugin.features == ("my_range_z",) and len(plugin.sha256) == 64
    feature = features["my_range_z"]
    assert feature.group == "volatility" and feature.warmup == 19
    assert feature.origin == f"plugin:{plugin.sha256}" and dict(feature.params) == {"window": 20}
    assert list(features) == [*CATALOG, "my_range_z"] and "my_range_z" not in CATALOG
    report = preflight(["ret_1", "my_range_z"], bars, features)  # the catalog's: not re-audited
    assert report is not None and [f.name for f in report.features] == ["my_range_z"]
    assert report.failures == ()
    r = (bars.frame["high"] - bars.frame["low"]) / bars.frame["close"]
    by_hand = ((r - r.rolling(20).mean()) / r.rolling(20).std()).to_numpy()[19:]
    built = build_features(bars, ["my_range_z"], feature_set=features)
    np.testing.assert_allclose(built.to_numpy()[:, 0], by_hand)
    with pytest.raises(FeatureError, match=r"unknown feature\(s\) \['my_range_z'\]"):
        build_features(bars, ["my_range_z"])  # the catalog's alone
    assert features.plugins_of(["ret_1", "my_range_z"]) == (plugin,)
    assert features.plugins_of(["ret_1"]) == ()


def test_the_preflight_refuses_a_planted_leaky_plugin_naming_the_feature_and_the_row(
    tmp_path: Path, bars: Bars
) -> None:
    features = CATALOG.with_plugins([plugin_file(tmp_path, LEAKY)])
    with pytest.raises(FeatureError) as caught:
        preflight(["my_tomorrow"], bars, features)
    message = str(caught.value)
    assert "my_tomorrow: look-ahead: row " in message and "on all bars" in message
    assert "\n" not in message and "xtune features audit" in message
    row = int(message.split("look-ahead: row ")[1].split()[0])
    # the last row before the first cut is the first that sees the future
    assert row == own_cuts(bars.index, warmup=0)[0] - 1


def test_adding_the_same_file_twice_runs_it_once_and_two_sets_never_mix(
    tmp_path: Path,
) -> None:
    path = plugin_file(tmp_path)
    features = CATALOG.with_plugins([path])
    assert features.with_plugins([path]) is features
    other = CATALOG.with_plugins([plugin_file(tmp_path, LEAKY, "other.py")])
    assert "my_tomorrow" not in features and "my_range_z" not in other
    assert "my_range_z" not in CATALOG and "rsi_14" in features


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("import numpy as np\nx = np.nosuchthing\n", "does not import (line 11): AttributeError"),
        ("def broken(:\n", "does not import (line 10): SyntaxError"),
        ("import no_such_package_xyz\n", "ModuleNotFoundError"),
        (CAUSAL.replace('"my_range_z"', '"rsi_14"'), "'rsi_14' is already declared by the catalog"),
        (CAUSAL.replace('"volatility"', '"vibes"'), "group 'vibes' is not one of"),
        (CAUSAL.replace('"my_range_z"', '"my range"'), "must be a Python identifier"),
    ],
)
def test_a_bad_plugin_is_refused_in_one_line_and_leaves_nothing_registered(
    tmp_path: Path, text: str, expected: str
) -> None:
    before = dict(CATALOG)
    # a good feature declared before the fault is rolled back with it
    path = plugin_file(tmp_path, CAUSAL.replace("my_range_z", "my_extra") + "\n" + text)
    with pytest.raises(FeatureError) as caught:
        CATALOG.with_plugins([path])
    assert str(caught.value).startswith(str(path)) and expected in str(caught.value)
    assert "\n" not in str(caught.value) and dict(CATALOG) == before


def test_a_plugin_that_declares_nothing_says_how_to_declare(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match=r"declares no feature. Decorate each feature"):
        CATALOG.with_plugins([plugin_file(tmp_path, "x = 1\n")])


def test_a_plugin_that_raises_or_returns_the_wrong_shape_fails_its_audit_not_the_process(
    tmp_path: Path, bars: Bars
) -> None:
    returns_array = CAUSAL.replace("return (r", "return r.to_numpy()\n    (r")
    features = CATALOG.with_plugins([plugin_file(tmp_path, returns_array)])
    report = audit(["my_range_z"], bars, feature_set=features)
    assert len(report.failures) == 1 and "returned a ndarray" in report.failures[0]


def _with_column(frame: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
    return frame.assign(my_signal=values)


def test_a_precomputed_column_is_kept_hashed_apart_and_audited_for_scale(
    frame: pd.DataFrame,
) -> None:
    signal = np.sin(np.arange(len(frame)) / 7.0)
    features = CATALOG.with_columns(["my_signal"])
    assert features["my_signal"].group == "column" and "my_signal" not in CATALOG
    assert features.columns_of(["ret_1", "my_signal"]) == ("my_signal",)
    bars = load_bars(_with_column(frame, signal), columns=["my_signal"])
    assert bars.columns == ("my_signal",)
    plain = load_bars(frame)
    assert bars.sha256 == plain.sha256  # the market data's identity: OHLCV and time
    values = build_features(bars, ["my_signal"], feature_set=features, use_cache=True)
    values = values.to_numpy()[:, 0]
    np.testing.assert_array_equal(values, signal)
    other = load_bars(_with_column(frame, signal * 2), columns=["my_signal"])
    again = build_features(other, ["my_signal"], feature_set=features, use_cache=True)
    again = again.to_numpy()[:, 0]
    np.testing.assert_array_equal(again, signal * 2)  # other column values, not the cache's
    report = preflight(["my_signal"], bars, features)
    assert report is not None and [f.name for f in report.features] == ["my_signal"]
    assert report.failures == ()
    huge = load_bars(_with_column(frame, signal * 1e15), columns=["my_signal"])
    with pytest.raises(FeatureError, match=r"my_signal: scale: \|value\| reaches"):
        preflight(["my_signal"], huge, features)


def test_a_missing_or_non_finite_column_is_refused_naming_it_and_the_row(
    frame: pd.DataFrame,
) -> None:
    with pytest.raises(DataError, match=r"no column\(s\) \['my_signal'\].*\[features\] columns"):
        load_bars(frame, name="bars.csv", columns=["my_signal"])
    values = np.ones(len(frame))
    values[:3] = np.nan
    with pytest.raises(DataError, match=r"'my_signal' is nan at row 0 \(time .*drop the rows"):
        load_bars(_with_column(frame, values), name="bars.csv", columns=["my_signal"])


def test_a_column_cannot_take_a_catalog_name(frame: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="'rsi_14' is already a feature of the catalog"):
        CATALOG.with_columns(["rsi_14"])
