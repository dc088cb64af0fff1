"""train_and_evaluate: repeatable, honest metrics, no crash on divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xtune.features import Dataset, DataSpec, LabelSpec, SplitSpec, load_bars, prepare
from xtune.models import (
    LSTMConfig,
    Metrics,
    Params,
    TrainConfig,
    XLSTMConfig,
    train,
    train_and_evaluate,
)
from xtune.models.train import default_threads

FEATURES = ("ret_1", "ret_3", "rsi_14", "bb_pct", "volume_z_20")


@pytest.fixture(scope="module")
def data() -> Dataset:
    from xtune.features.sample import synthetic_bars

    bars = load_bars(synthetic_bars(2500, seed=2))
    return prepare(bars, DataSpec(features=FEATURES, window=16), use_cache=False)


def _lstm(n: int = len(FEATURES), **train: object) -> Params:
    return Params(LSTMConfig(n_features=n, hidden=16), TrainConfig(epochs=4, **train))  # type: ignore[arg-type]


def _comparable(m: Metrics) -> dict[str, object]:
    d = m.to_dict()
    for timing in ("train_seconds", "latency_ms"):
        d.pop(timing)
    return d


@pytest.mark.parametrize("family", ["lstm", "xlstm"])
def test_same_seed_same_metrics_on_cpu(data: Dataset, family: str) -> None:
    n = len(FEATURES)
    model = (
        LSTMConfig(n_features=n, hidden=16)
        if family == "lstm"
        else XLSTMConfig(n_features=n, embed=16, heads=2)
    )
    params = Params(model, TrainConfig(epochs=2, seed=7, batch_size=128))
    first, second = train_and_evaluate(params, data), train_and_evaluate(params, data)
    assert _comparable(first) == _comparable(second)
    other = train_and_evaluate(Params(model, TrainConfig(epochs=2, seed=8, batch_size=128)), data)
    assert _comparable(other) != _comparable(first)


def test_metrics_are_complete_and_honest(data: Dataset) -> None:
    m = train_and_evaluate(_lstm(), data)
    assert m.status == "ok" and m.reason == ""
    val = data.direction[data.folds[0].val.start : data.folds[0].val.stop, 0]
    assert m.baseline_accuracy == pytest.approx(max(val.mean(), 1 - val.mean()))
    assert 0 < m.val_accuracy < 1 and math.isfinite(m.val_loss)
    assert m.val_loss == min(r.val_loss for r in m.curve)  # best epoch's weights are kept
    assert m.curve[m.best_epoch - 1].val_loss == m.val_loss
    assert m.epochs_run == len(m.curve) <= 4
    assert m.params > 0 and m.latency_ms > 0 and m.train_seconds > 0
    assert m.edge == pytest.approx(m.val_accuracy - m.baseline_accuracy)


def test_the_returned_model_scores_the_reported_accuracy(data: Dataset) -> None:
    model, metrics, ret_scale = train(_lstm(), data)
    val = data.val()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(np.ascontiguousarray(val.x)))
    acc = float((logits.argmax(-1).numpy() == val.direction).mean())
    assert acc == pytest.approx(metrics.val_accuracy, abs=1e-9)
    assert ret_scale.shape == (1,) and ret_scale[0] > 0


def test_early_stopping_on_validation_loss(data: Dataset) -> None:
    """With a learning rate that overfits at once, training stops `patience` epochs after the best."""
    m = train_and_evaluate(
        Params(
            LSTMConfig(n_features=len(FEATURES), hidden=64),
            TrainConfig(epochs=40, patience=2, lr=3e-2),
        ),
        data,
    )
    assert m.epochs_run < 40
    assert m.epochs_run == m.best_epoch + 2
    assert m.stopped.startswith("early stopping") and f"after epoch {m.best_epoch}" in m.stopped


def test_divergence_is_a_recorded_result_not_a_crash(data: Dataset) -> None:
    m = train_and_evaluate(_lstm(lr=1e30, grad_clip=1e30, warmup=0.0), data)
    assert m.status == "diverged"
    assert "non-finite" in m.reason
    assert m.val_accuracy == 0.0 and m.val_loss == math.inf


def test_walk_forward_folds_are_averaged() -> None:
    from xtune.features.sample import synthetic_bars

    bars = load_bars(synthetic_bars(3000, seed=4))
    data = prepare(
        bars, DataSpec(features=FEATURES, window=16, split=SplitSpec(folds=2)), use_cache=False
    )
    per_fold = [train(_lstm(), data, fold=k)[1] for k in range(2)]
    mean = train_and_evaluate(_lstm(), data)
    assert mean.val_accuracy == pytest.approx(np.mean([m.val_accuracy for m in per_fold]))
    assert mean.baseline_accuracy == pytest.approx(np.mean([m.baseline_accuracy for m in per_fold]))


def test_several_horizons_and_three_classes() -> None:
    from xtune.features.sample import synthetic_bars

    spec = DataSpec(
        features=FEATURES, window=16, labels=LabelSpec(horizons=(1, 3), dead_zone=5e-4, classes=3)
    )
    data = prepare(load_bars(synthetic_bars(2500, seed=5)), spec, use_cache=False)
    from xtune.models import HeadConfig

    params = Params(
        LSTMConfig(n_features=len(FEATURES), hidden=16, head=HeadConfig(2, 3)),
        TrainConfig(epochs=2),
    )
    m = train_and_evaluate(params, data)
    assert len(m.val_accuracy_per_horizon) == 2
    assert m.val_accuracy == pytest.approx(np.mean(m.val_accuracy_per_horizon))


def test_threads_are_restored_and_sensible() -> None:
    before = torch.get_num_threads()
    assert 1 <= default_threads() <= 4
    assert torch.get_num_threads() == before


def test_heads_must_match_the_labels(data: Dataset) -> None:
    from xtune.errors import SpecError
    from xtune.models import HeadConfig

    params = Params(
        LSTMConfig(n_features=len(FEATURES), head=HeadConfig(horizons=2)), TrainConfig(epochs=1)
    )
    with pytest.raises(SpecError, match="do not match"):
        train_and_evaluate(params, data)


def test_learning_rate_schedules() -> None:
    from xtune.models.train import _lr_factor

    # linear warm-up over 10 steps, then cosine to 0 at the last step
    assert _lr_factor(0, 100, 10, "cosine", 1.0) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0)))
    assert _lr_factor(9, 100, 10, "cosine", 1.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.09))
    )
    assert _lr_factor(100, 100, 10, "cosine", 1.0) == pytest.approx(0.0, abs=1e-12)
    # plateau: the factor the loop halves on stalls, after warm-up
    assert _lr_factor(50, 100, 10, "plateau", 0.25) == 0.25


def test_plateau_schedule_halves_the_rate_when_validation_stalls(data: Dataset) -> None:
    m = train_and_evaluate(
        Params(
            LSTMConfig(n_features=len(FEATURES), hidden=64),
            TrainConfig(epochs=12, patience=4, lr=3e-2, schedule="plateau", warmup=0.0),
        ),
        data,
    )
    rates = [r.lr for r in m.curve]
    assert rates[0] == pytest.approx(3e-2)
    assert rates[-1] < rates[0]  # halved at least once before early stopping
