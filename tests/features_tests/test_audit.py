"""Guard the guards: the audit catches planted features that break each promise, and
`xtune features audit` reports them with exit 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from typer.testing import CliRunner

from tests.search_tests.studies import write_study
from xtune.errors import FeatureError
from xtune.features import CATALOG, Bars, Feature, FeatureSet, load_bars
from xtune.features._audit import audit, default_cuts
from xtune.features._cuts import own_cuts

CUTS = (150, 611, 1234)
Fn = Callable[[pd.DataFrame], pd.Series]


def planted(*features: tuple[str, Fn] | Feature) -> FeatureSet:
    """The catalog with deliberately broken features, each declared as a catalog feature (a
    name and a function: group returns, warm-up 1)."""
    made = [f if isinstance(f, Feature) else Feature(f[0], "returns", 1, f[1]) for f in features]
    return FeatureSet({**CATALOG, **{f.name: f for f in made}})


def test_the_lookahead_check_catches_a_leaky_feature(bars: Bars) -> None:
    """A feature that peeks one bar ahead is named with the first row that differs."""
    leak = lambda b: np.log(b["close"].shift(-1) / b["close"])  # noqa: E731
    name = "test_leaky_next_return"
    report = audit([name], bars, feature_set=planted((name, leak)), cuts=CUTS)
    (result,) = report.features
    assert result.lookahead is not None
    assert result.lookahead.startswith(f"row 149 ({bars.index[149]}) is nan on bars[:150], ")
    assert report.failures[0].startswith(f"{name}: look-ahead: row 149 ")
    assert result.warmup_check == "row 1499 is nan after warm-up 1"  # the last bar has no next


def test_the_warmup_check_catches_nan_after_it_and_library_fill_before_it(bars: Bars) -> None:
    def raw_hammer(b: pd.DataFrame) -> pd.Series:  # TA-Lib's 0s during its lookback left in
        cols = (b[c].to_numpy(np.float64) for c in ("open", "high", "low", "close"))
        return pd.Series(talib.CDLHAMMER(*cols) / 100.0, index=b.index)

    short = Feature("test_short_warmup", "returns", 0, lambda b: np.log(b["close"]).diff())
    filled = Feature("test_raw_hammer", "returns", 11, raw_hammer, {"talib": "CDLHAMMER"})
    features = planted(short, filled)
    report = audit([short.name, filled.name], bars, feature_set=features, cuts=CUTS)
    assert [f.warmup_check for f in report.features] == [
        "row 0 is nan after warm-up 0",
        "row 0 is 0 inside warm-up 11, not NaN",
    ]
    assert all(f.lookahead is None and f.scale is None for f in report.features)


def test_the_scale_check_catches_a_level_a_count_and_a_drift(bars: Bars) -> None:
    features = {
        "test_level": lambda b: b["close"] / 100.0,  # a price level, small on these bars
        "test_count": lambda b: pd.Series(np.arange(len(b), dtype=float), index=b.index),
        "test_drift": lambda b: np.log(b["close"] / b["close"].iloc[0]),  # scale-free, but a level
    }
    feature_set = planted(*features.items())
    report = audit(features, bars, feature_set=feature_set, cuts=CUTS)
    level, count, drift = (f.scale or "" for f in report.features)
    assert level.startswith("prices x1024 and volume x8 change row 1 from ")
    assert count == "|value| reaches 1499 (limit 1000)"
    assert drift.endswith("as the price triples") and "x)" in drift
    assert len(report.failures) == 3 and report.failures[2].startswith("test_drift: scale: ")


def test_default_cuts_spread_over_the_bars_after_the_warmup() -> None:
    assert default_cuts(1500, 99) == (150, 615, 1230)
    assert default_cuts(200, 99) == (101, 164)  # 10% falls inside the warm-up; 41% too: merged
    with pytest.raises(FeatureError, match="warm-up"):
        default_cuts(100, 99)


def test_audit_refuses_unknown_names_and_cuts_outside_the_bars(bars: Bars) -> None:
    with pytest.raises(FeatureError, match="xtune features list"):
        audit(["rsi_99"], bars)
    with pytest.raises(FeatureError, match="cut points"):
        audit(["ret_1"], bars, cuts=(150, 1501))


LEAKY_PLUGIN = """
from xtune.features import register


@register("test_leaky_two_ahead", "returns", 1, "the return two bars ahead: a planted leak")
def leak(bars):
    return bars["close"].shift(-2) / bars["close"]
"""


def test_the_command_exits_1_naming_the_leaky_feature(tmp_path: Path) -> None:
    from xtune.cli import app

    (tmp_path / "leaky.py").write_text(LEAKY_PLUGIN)
    study = write_study(tmp_path)
    study.write_text(
        study.read_text().replace("[features]\n", '[features]\nplugins = ["leaky.py"]\n')
    )
    name, bars = "test_leaky_two_ahead", "sample:synthetic"
    result = CliRunner().invoke(
        app,
        ["features", "audit", str(study), "--data", bars, "-f", name, "-f", "ret_1"],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 1, result.output
    first_cut = own_cuts(load_bars(bars).index, 1)[0]  # a plugin feature's cuts
    assert name in result.output and f"row {first_cut - 2} " in result.output
    assert "sample:synthetic" in result.output  # the bars asked for
    assert "2 check(s) failed" in result.output  # look-ahead and warm-up (its last two rows)
