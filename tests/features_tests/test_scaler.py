"""The scaler sees training rows only, clips, and survives a JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xtune.errors import SpecError
from xtune.features import (
    DataSpec,
    RobustScaler,
    fit_robust,
    inverse,
    load_bars,
    prepare,
    transform,
)

SPEC = DataSpec(features=("ret_1", "rsi_14", "atr_14", "volume_z_20"), window=20)


def test_scaler_is_fit_on_the_training_part_only(frame: pd.DataFrame) -> None:
    """Wreck every bar after the training part: the scaler and the training windows must not move."""
    ds = prepare(load_bars(frame), SPEC, use_cache=False)
    fold = ds.folds[0]
    last_train_bar = ds.times[fold.train.stop - 1]
    future = frame.index > last_train_bar
    wrecked = frame.copy()
    wrecked.loc[future, ["open", "high", "low", "close"]] *= np.exp(
        np.linspace(0, 3, future.sum())
    )[:, None]
    wrecked.loc[future, "volume"] *= 50.0
    other = prepare(load_bars(wrecked), SPEC, use_cache=False)
    np.testing.assert_array_equal(other.folds[0].scaler.center, fold.scaler.center)
    np.testing.assert_array_equal(other.folds[0].scaler.scale, fold.scaler.scale)
    np.testing.assert_array_equal(other.train().x, ds.train().x)
    assert not np.array_equal(other.val().x, ds.val().x)  # the change did reach later rows


def test_scaler_fit_equals_a_fit_on_exactly_the_training_rows(frame: pd.DataFrame) -> None:
    ds = prepare(load_bars(frame), SPEC, use_cache=False)
    fold = ds.folds[0]
    by_hand = fit_robust(ds.raw[: fold.train.stop], ds.features)
    np.testing.assert_array_equal(by_hand.center, fold.scaler.center)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(fit_robust(ds.raw, ds.features).center, fold.scaler.center)


def test_transform_clips_and_inverse_round_trips() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 3)) * [1.0, 10.0, 1e-4] + [0.0, 5.0, 1.0]
    scaler = fit_robust(x, ("a", "b", "c"), clip=3.0)
    z = transform(x, scaler)
    assert z.dtype == np.float32 and z.flags.c_contiguous
    assert np.abs(z).max() <= 3.0
    np.testing.assert_allclose(np.median(z, axis=0), 0.0, atol=1e-6)
    inside = (np.abs(z) < 3.0).all(axis=1)
    np.testing.assert_allclose(inverse(z, scaler)[inside], x[inside], rtol=1e-5, atol=1e-9)
    # a value 1e15 (the burned user's input) is clipped, not passed through
    assert transform(np.array([[1e15, -1e15, 1e15]]), scaler).tolist() == [[3.0, -3.0, 3.0]]


def test_constant_and_mostly_zero_columns_do_not_divide_by_zero() -> None:
    pattern = np.zeros(1000)
    pattern[::50] = 1.0
    pattern[25::50] = -1.0
    x = np.column_stack([pattern, np.full(1000, 7.0)])
    scaler = fit_robust(x, ("cdl", "const"))
    assert scaler.scale.tolist() == [1.0, 1.0]  # max-abs fallback, then 1 for a constant
    z = transform(x, scaler)
    assert set(np.unique(z[:, 0])) == {-1.0, 0.0, 1.0}
    assert (z[:, 1] == 0).all()


def test_json_round_trip(frame: pd.DataFrame) -> None:
    scaler = prepare(load_bars(frame), SPEC, use_cache=False).folds[0].scaler
    again = RobustScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert again.columns == scaler.columns and again.clip == scaler.clip
    np.testing.assert_array_equal(again.center, scaler.center)
    np.testing.assert_array_equal(again.scale, scaler.scale)


def test_bad_scaler_data_is_refused() -> None:
    with pytest.raises(SpecError, match="unknown scaler kind"):
        RobustScaler.from_dict({"kind": "minmax"})
    with pytest.raises(SpecError, match="inconsistent"):
        RobustScaler.from_dict(
            {"kind": "robust", "columns": ["a"], "center": [0, 1], "scale": [1, 1], "clip": 5}
        )
    with pytest.raises(SpecError, match="non-empty"):
        fit_robust(np.zeros((0, 2)), ("a", "b"))
