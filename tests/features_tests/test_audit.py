"""Guard the guards: the audit catches planted features that break each promise, and
`xtune features audit` reports them with exit 1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import talib
from typer.testing import CliRunner

from xtune.errors import FeatureError
from xtune.features import Bars
from xtune.features._audit import audit, default_cuts
from xtune.features.registry import _REGISTRY, register

CUTS = (150, 611, 1234)


@contextmanager
def planted(
    name: str, fn: Callable[[pd.DataFrame], pd.Series], *, warmup: int = 1, **params: object
) -> Iterator[str]:
    """A deliberately broken feature in the catalog for the duration of the block."""
    register(name, "returns", warmup, "planted by a test", **params)(fn)
    try:
        yield name
    finally:
        _REGISTRY.pop(name, None)


def test_the_lookahead_check_catches_a_leaky_feature(bars: Bars) -> None:
    """A feature that peeks one bar ahead is named with the first row that differs."""
    leak = lambda b: np.log(b["close"].shift(-1) / b["close"])  # noqa: E731
    with planted("test_leaky_next_return", leak) as name:
        report = audit([name], bars, cuts=CUTS)
    (result,) = report.features
    assert result.lookahead is not None
    assert result.lookahead.startswith(f"row 149 ({bars.index[149]}) is nan on bars[:150], ")
    assert report.failures[0].startswith(f"{name}: look-ahead: row 149 ")
    assert result.warmup_check == "row 1499 is nan after warm-up 1"  # the last bar has no next


def test_the_warmup_check_catches_nan_after_it_and_library_fill_before_it(bars: Bars) -> None:
    def raw_hammer(b: pd.DataFrame) -> pd.Series:  # TA-Lib's 0s during its lookback left in
        cols = (b[c].to_numpy(np.float64) for c in ("open", "high", "low", "close"))
        return pd.Series(talib.CDLHAMMER(*cols) / 100.0, index=b.index)

    with (
        planted("test_short_warmup", lambda b: np.log(b["close"]).diff(), warmup=0) as short,
        planted("test_raw_hammer", raw_hammer, warmup=11, talib="CDLHAMMER") as filled,
    ):
        report = audit([short, filled], bars, cuts=CUTS)
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
    with (
        planted("test_level", features["test_level"]),
        planted("test_count", features["test_count"]),
        planted("test_drift", features["test_drift"]),
    ):
        report = audit(features, bars, cuts=CUTS)
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


def test_the_command_exits_1_naming_the_leaky_feature() -> None:
    from xtune.cli import app

    leak = lambda b: b["close"].shift(-2) / b["close"]  # noqa: E731
    with planted("test_leaky_two_ahead", leak) as name:
        result = CliRunner().invoke(
            app, ["features", "audit", "-f", name, "-f", "ret_1"], env={"COLUMNS": "300"}
        )
    assert result.exit_code == 1, result.output
    first_cut = default_cuts(6000, 1)[0]
    assert name in result.output and f"row {first_cut - 2} " in result.output
    assert "sample:synthetic" in result.output  # the default bars
    assert "2 check(s) failed" in result.output  # look-ahead and warm-up (its last two rows)
