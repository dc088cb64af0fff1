"""Windows are views, and the window ending at bar t predicts the move from t to t + h."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xtune.errors import SpecError
from xtune.features import (
    DataSpec,
    LabelSpec,
    SplitSpec,
    load_bars,
    prepare,
    windows,
    windows_ending_at,
)


def test_window_alignment_by_hand() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)  # row r holds [2r, 2r + 1]
    w = windows(x, 3)
    assert w.shape == (4, 3, 2)
    # the window ending at row 4 is rows 2, 3, 4
    np.testing.assert_array_equal(windows_ending_at(x, 3, range(4, 5))[0], [[4, 5], [6, 7], [8, 9]])
    np.testing.assert_array_equal(w[4 - 3 + 1], x[2:5])


def test_pipeline_alignment_by_hand() -> None:
    """A tiny series where every number can be checked: the feature is the 1-bar log return,
    so the last row of the window ending at t is log(close[t] / close[t-1]), and that window's
    label is log(close[t+h] / close[t])."""
    n = 400
    close = 100.0 * np.exp(np.cumsum(np.sin(np.arange(n) * 0.7) * 0.01))
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    frame = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                          "volume": 1.0}, index=idx)  # fmt: skip
    spec = DataSpec(
        features=("ret_1",), window=5, labels=LabelSpec(horizons=(1, 3)),
        split=SplitSpec(min_samples=10), clip=1e9,
    )  # fmt: skip
    ds = prepare(load_bars(frame), spec, use_cache=False)
    part = ds.train()
    scaler = ds.folds[0].scaler
    for i in (0, 7, len(part) - 1):
        t_row = part.ends[i]  # row in the feature frame; bars are offset by the 1-bar warm-up
        t_bar = t_row + 1
        assert part.times[i] == idx[t_bar]
        window_raw = part.x[i, :, 0] * scaler.scale[0] + scaler.center[0]
        expect = np.log(close[t_bar - 4 : t_bar + 1] / close[t_bar - 5 : t_bar])
        np.testing.assert_allclose(window_raw, expect, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(part.returns[i], [np.log(close[t_bar + 1] / close[t_bar]),
                                                     np.log(close[t_bar + 3] / close[t_bar])], rtol=1e-5)  # fmt: skip
        assert part.direction[i, 0] == int(close[t_bar + 1] > close[t_bar])


def test_windows_are_views_of_one_array(frame: pd.DataFrame) -> None:
    ds = prepare(
        load_bars(frame), DataSpec(features=("ret_1", "rsi_14"), window=30), use_cache=False
    )
    base = ds.folds[0].x
    for part in (ds.train(), ds.val()):
        assert np.shares_memory(part.x, base)
        assert part.x.base is not None and part.x.dtype == np.float32
    assert base.flags.c_contiguous


@pytest.mark.parametrize("window", [10, 100, 500])
def test_window_memory_does_not_grow_with_the_window(frame: pd.DataFrame, window: int) -> None:
    x = np.zeros((5000, 8), np.float32)
    w = windows(x, window)
    assert w.shape == (5000 - window + 1, window, 8)
    # the view owns nothing: its bytes are the base array's, whatever the window
    assert w.base is not None and not w.flags.owndata
    assert np.shares_memory(w, x)


def test_bad_windows() -> None:
    with pytest.raises(SpecError, match="does not fit"):
        windows(np.zeros((5, 2), np.float32), 6)
    with pytest.raises(SpecError, match=">= window - 1"):
        windows_ending_at(np.zeros((50, 2), np.float32), 10, range(3, 20))
