"""The whole data side end to end, and its honesty: noise scores chance, signal does not."""

from __future__ import annotations

import numpy as np
import pytest

from xtune.errors import SpecError
from xtune.features import (
    CATALOG,
    Bars,
    DataSpec,
    LabelSpec,
    SplitSpec,
    build_features,
    load_bars,
    prepare,
)


def test_end_to_end_on_real_eurusd_bars(eurusd: Bars) -> None:
    spec = DataSpec(window=48, labels=LabelSpec(horizons=(1, 4)), split=SplitSpec(folds=2))
    ds = prepare(eurusd, spec)
    assert ds.features == tuple(CATALOG)
    assert len(ds.folds) == 2
    for k in range(2):
        train, val = ds.train(k), ds.val(k)
        assert train.x.shape[1:] == (48, len(CATALOG))
        assert np.isfinite(train.x).all() and np.abs(train.x).max() <= spec.clip
        assert train.times[-1] < val.times[0]
        assert set(np.unique(train.direction)) == {0, 1}
        assert np.isfinite(train.returns).all()
    assert ds.val(1).times[-1] < ds.times[ds.split.test.start]
    fold, test = ds.final()
    assert len(test) == len(ds.split.test) and test.times[0] > ds.val(1).times[-1]
    assert fold.train == ds.split.development
    # both up and down are common on real bars: the majority baseline is near, not at, 50%
    up = ds.val().direction[:, 0].mean()
    assert 0.35 < up < 0.65


def test_prepare_reuses_a_prebuilt_candidate_frame(bars: Bars) -> None:
    """A search builds the candidate features once; each trial picks its subset from that frame."""
    wide = build_features(bars, None)
    spec = DataSpec(features=("ret_1", "rsi_14"), window=16)
    direct = prepare(bars, spec)
    subset = prepare(bars, spec, features=wide)
    assert len(subset.times) == len(wide) < len(direct.times)  # rows shared with wider subsets
    np.testing.assert_array_equal(subset.raw, wide[list(spec.feature_names())].to_numpy())
    with pytest.raises(SpecError, match="not built from these bars"):
        prepare(bars.head(1400), spec, features=wide.iloc[:-5])


def test_too_few_bars_is_refused_before_any_work(frame) -> None:  # type: ignore[no-untyped-def]
    spec = DataSpec(window=60)
    need = spec.min_bars()
    with pytest.raises(SpecError, match=f"needs at least {need}"):
        prepare(load_bars(frame.iloc[: need - 1]), spec, use_cache=False)
    prepare(load_bars(frame.iloc[:need]), spec, use_cache=False)  # exactly enough works


def _logistic_val_accuracy(bars: Bars, window: int) -> tuple[float, float, int]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    spec = DataSpec(
        features=("ret_1", "ret_3", "rsi_14", "bb_pct", "macd_hist", "volume_z_20", "cdl_doji"),
        window=window,
    )
    ds = prepare(bars, spec, use_cache=False)
    train, val = ds.train(), ds.val()
    model = LogisticRegression(C=1.0, max_iter=2000)
    with threadpool_limits(1):  # BLAS threads spin: on a busy 2-core machine, 12 s for 0.4 s
        model.fit(train.x.reshape(len(train), -1), train.direction[:, 0])
    acc = float((model.predict(val.x.reshape(len(val), -1)) == val.direction[:, 0]).mean())
    baseline = float(max(val.direction[:, 0].mean(), 1 - val.direction[:, 0].mean()))
    return acc, baseline, len(val)


def test_no_skill_on_a_random_walk() -> None:
    """On a pure random walk, nothing is predictable: a classifier on the pipeline's windows must
    score chance on validation (within 3 standard errors of 50%). A leak would show up here."""
    acc, _, n = _logistic_val_accuracy(load_bars("sample:random_walk"), window=10)
    se = np.sqrt(0.25 / n)
    assert abs(acc - 0.5) < 3 * se, (acc, n)


def test_real_signal_is_found_so_the_no_skill_test_can_fail() -> None:
    """Positive control: the synthetic sample's generator has momentum (AR 0.15, so about 54.8%
    is reachable); on 20k of its bars the same classifier beats its baseline by over 3 standard
    errors. Without this, a pipeline that scrambled its labels would pass the test above."""
    from xtune.features.sample import synthetic_bars

    acc, baseline, n = _logistic_val_accuracy(load_bars(synthetic_bars(20_000)), window=10)
    assert acc - baseline > 3 * np.sqrt(0.25 / n), (acc, baseline, n)
