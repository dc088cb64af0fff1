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
from xtune.models._train import default_threads

FEATURES = ("ret_1", "ret_3", "rsi_14", "bb_pct", "volume_z_20")


@pytest.fixture(scope="module")
def data() -> Dataset:
    from xtune.features.sample import synthetic_bars

    bars = load_bars(synthetic_bars(2500, seed=2))
    return prepare(bars, DataSpec(features=FEATURES, window=16), use_cache=False)


def _lstm(n: int = len(FEATURES), **train: object) -> Params:
    return Params(LSTMConfig(n_features=n, hidden=16), TrainConfig(epochs=4, **train))  # type: ignore[arg-type]


def _comparable(m: Metrics) -> tuple[object, ...]:
    return m.val, m.log.curve, m.log.best_epoch, m.log.stopped  # everything but the timing


@pytest.mark.slow
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


@pytest.mark.slow
def test_metrics_are_complete_and_honest(data: Dataset) -> None:
    m = train_and_evaluate(_lstm(), data)
    v, log = m.val, m.log
    assert m.status == "ok" and log.reason == ""
    val = data.direction[data.folds[0].val.start : data.folds[0].val.stop, 0]
    assert v.baseline == pytest.approx(max(val.mean(), 1 - val.mean()))
    assert v.samples == len(val)
    assert 0 < v.accuracy < 1 and math.isfinite(v.loss)
    assert v.loss == min(r.val_loss for r in log.curve)  # best epoch's weights are kept
    assert log.curve[log.best_epoch - 1].val_loss == v.loss
    assert log.epochs_run == len(log.curve) <= 4
    assert log.seconds > 0
    assert v.edge == pytest.approx(v.accuracy - v.baseline)


@pytest.mark.slow
def test_the_returned_model_scores_the_reported_accuracy(data: Dataset) -> None:
    fit = train(_lstm(), data)
    val = data.val()
    with torch.no_grad():
        logits, _ = fit.model(torch.from_numpy(np.ascontiguousarray(val.x)))
    acc = float((logits.argmax(-1).numpy() == val.direction).mean())
    assert acc == pytest.approx(fit.metrics.val.accuracy, abs=1e-9)
    assert fit.ret_scale.shape == (1,) and fit.ret_scale[0] > 0


@pytest.mark.slow
def test_a_trial_starting_from_a_probed_model_trains_as_if_it_built_its_own(data: Dataset) -> None:
    """The objective builds and probes the model once (the probe draws random inputs); the
    folds then start from that model and the RNG state right after it was built."""
    from xtune.models import initialize, probe

    params = _lstm(seed=3)
    init = initialize(params)
    resources = probe(init.model, data.spec.window, len(FEATURES))
    assert resources.params > 0 and resources.latency_ms > 0
    torch.randn(100)  # anything drawn in between must not matter
    assert _comparable(train_and_evaluate(params, data, init=init)) == _comparable(
        train_and_evaluate(params, data)
    )


@pytest.mark.slow
def test_early_stopping_on_validation_loss(data: Dataset) -> None:
    """With a learning rate that overfits at once, training stops `patience` epochs after the best."""
    m = train_and_evaluate(
        Params(
            LSTMConfig(n_features=len(FEATURES), hidden=64),
            TrainConfig(epochs=40, patience=2, lr=3e-2),
        ),
        data,
    )
    log = m.log
    assert log.epochs_run < 40
    assert log.epochs_run == log.best_epoch + 2
    assert (
        log.stopped.startswith("early stopping") and f"after epoch {log.best_epoch}" in log.stopped
    )


@pytest.mark.slow
def test_divergence_is_a_recorded_result_not_a_crash(data: Dataset) -> None:
    m = train_and_evaluate(_lstm(lr=1e30, grad_clip=1e30, warmup=0.0), data)
    assert m.status == "diverged"
    assert "non-finite" in m.log.reason
    assert m.val.accuracy == 0.0 and m.val.loss == math.inf


@pytest.mark.slow
def test_walk_forward_folds_are_averaged() -> None:
    from xtune.features.sample import synthetic_bars

    bars = load_bars(synthetic_bars(3000, seed=4))
    data = prepare(
        bars, DataSpec(features=FEATURES, window=16, split=SplitSpec(folds=2)), use_cache=False
    )
    per_fold = [train(_lstm(), data, fold=k).metrics.val for k in range(2)]
    mean = train_and_evaluate(_lstm(), data).val
    assert mean.accuracy == pytest.approx(np.mean([m.accuracy for m in per_fold]))
    assert mean.baseline == pytest.approx(np.mean([m.baseline for m in per_fold]))
    assert mean.samples == sum(m.samples for m in per_fold)


@pytest.mark.slow
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
    assert len(m.val.per_horizon) == 2
    assert m.val.accuracy == pytest.approx(np.mean(m.val.per_horizon))


@pytest.mark.slow
def test_training_uses_its_thread_count_and_restores_the_callers(data: Dataset) -> None:
    assert 1 <= default_threads() <= 4
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    seen: list[int] = []
    try:
        train(_lstm(threads=1), data, on_epoch=lambda _: seen.append(torch.get_num_threads()))
        assert seen and set(seen) == {1}  # inside training: the configured count
        assert torch.get_num_threads() == 3  # after: the caller's setting again
    finally:
        torch.set_num_threads(before)


def test_heads_must_match_the_labels(data: Dataset) -> None:
    from xtune.errors import SpecError
    from xtune.models import HeadConfig

    params = Params(
        LSTMConfig(n_features=len(FEATURES), head=HeadConfig(horizons=2)), TrainConfig(epochs=1)
    )
    with pytest.raises(SpecError, match="do not match"):
        train_and_evaluate(params, data)


def test_learning_rate_schedules() -> None:
    from xtune.models._train import _lr_factor

    # linear warm-up over 10 steps, then cosine to 0 at the last step
    assert _lr_factor(0, 100, 10, "cosine", 1.0) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0)))
    assert _lr_factor(9, 100, 10, "cosine", 1.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.09))
    )
    assert _lr_factor(100, 100, 10, "cosine", 1.0) == pytest.approx(0.0, abs=1e-12)
    # plateau: the factor the loop halves on stalls, after warm-up
    assert _lr_factor(50, 100, 10, "plateau", 0.25) == 0.25


@pytest.mark.slow
def test_plateau_schedule_halves_the_rate_when_validation_stalls(data: Dataset) -> None:
    m = train_and_evaluate(
        Params(
            LSTMConfig(n_features=len(FEATURES), hidden=64),
            TrainConfig(epochs=12, patience=4, lr=3e-2, schedule="plateau", warmup=0.0),
        ),
        data,
    )
    rates = [r.lr for r in m.log.curve]
    assert rates[0] == pytest.approx(3e-2)
    assert rates[-1] < rates[0]  # halved at least once before early stopping


@pytest.mark.slow
def test_max_seconds_stops_training_and_scores_the_best_epoch(data: Dataset) -> None:
    params = Params(
        LSTMConfig(n_features=len(FEATURES), hidden=16),
        TrainConfig(epochs=10_000, patience=10_000, max_seconds=1.0),
    )
    m = train_and_evaluate(params, data)
    assert m.status == "ok" and m.log.epochs_run < 10_000
    assert m.log.stopped.startswith("time limit: max_seconds = 1 reached")
    assert m.log.seconds < 5.0  # one epoch of this size takes well under a second
    assert m.val.loss == min(r.val_loss for r in m.log.curve)  # scored on the best epoch


@pytest.mark.slow
def test_a_rung_judges_the_best_epoch_so_far_as_the_trial_would_report_it(data: Dataset) -> None:
    """A trial past its best epoch would report the best one (its weights are restored), so a
    rung scores that epoch, not the current one."""
    from xtune.models import Rungs, Scores

    seen: dict[str, Scores] = {}
    config = TrainConfig(epochs=8, lr=0.05, patience=8, seed=3)
    params = Params(LSTMConfig(n_features=len(FEATURES), hidden=16), config)
    rungs = Rungs(frozenset(range(1, 8)), lambda rung, scores: seen.setdefault(rung, scores))
    log = train(params, data, rungs=rungs).metrics.log
    losses = [r.val_loss for r in log.curve]
    past_best = [e for e in range(2, 8) if losses[e - 1] > min(losses[: e - 1])]
    assert past_best, "these settings should overshoot at some epoch; the test needs one"
    for epoch in range(1, 8):
        best = min(losses[:epoch])
        assert seen[f"fold0/epoch{epoch}"].loss == pytest.approx(best, abs=1e-6)
