"""The catalog's array versions of ``ta`` indicators (:mod:`xtune.features._indicators`) give
the ``ta`` library's own values, computed by ``ta`` itself, on real and synthetic bars."""

from __future__ import annotations

import numpy as np
import pytest

from xtune.features import CATALOG, Bars, load_bars
from xtune.features._indicators import by_ta
from xtune.features.sample import synthetic_bars


@pytest.fixture(scope="module", params=["eurusd", "goog", "synthetic", "flat", "no_volume"])
def sample(request: pytest.FixtureRequest) -> Bars:
    if request.param == "synthetic":
        return load_bars(synthetic_bars(3000, seed=5), name="synthetic")
    if request.param == "flat":  # a frozen market mid-series: 0/0 where ta gives NaN too
        frame = synthetic_bars(600, seed=6)
        frame.iloc[200:240, :4] = frame.iloc[199]["close"]
        return load_bars(frame, name="flat")
    if request.param == "no_volume":  # a holiday: bars move, nothing trades
        frame = synthetic_bars(600, seed=7)
        frame.iloc[300:330, frame.columns.get_loc("volume")] = 0.0
        return load_bars(frame, name="no_volume")
    pytest.importorskip("backtesting")
    return load_bars(f"sample:{request.param}")


@pytest.mark.parametrize("name", sorted(by_ta()))
def test_array_version_equals_ta(sample: Bars, name: str) -> None:
    feature = CATALOG[name]
    ours = feature.fn(sample.frame).to_numpy(np.float64)[feature.warmup :]
    theirs = by_ta()[name](sample.frame).to_numpy(np.float64)[feature.warmup :]
    assert len(ours) > 100
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    scale = np.nanmax(np.abs(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12 * scale, equal_nan=True)
