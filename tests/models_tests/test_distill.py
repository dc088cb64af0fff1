"""Distillation: the loss by hand, soft labels from train + validation only, and w = 0 as the
plain way."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xtune.errors import SpecError
from xtune.features import Dataset, DataSpec, load_bars, prepare
from xtune.features.sample import synthetic_bars
from xtune.models import LossConfig, LSTMConfig, Params, TrainConfig, build_model, fit_final
from xtune.models.distill import (
    DistillConfig,
    SoftCriterion,
    distillation_loss,
    fit_student,
    soft_labels,
    student_loss,
)

FEATURES = ("ret_1", "ret_3", "rsi_14")


@pytest.fixture(scope="module")
def data() -> Dataset:
    bars = load_bars(synthetic_bars(1500, seed=4))
    return prepare(bars, DataSpec(features=FEATURES, window=8), use_cache=False)


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    torch.manual_seed(3)
    return build_model(LSTMConfig(n_features=len(FEATURES), hidden=8)).eval()


def _student(**train: object) -> Params:
    return Params(LSTMConfig(n_features=len(FEATURES), hidden=4), TrainConfig(epochs=2, **train))  # type: ignore[arg-type]


def test_the_loss_equals_a_hand_computed_value() -> None:
    # One sample, one horizon, two classes. T = 2: the student's logits (0, 1) become (0, 0.5),
    # the teacher's (2, 0) become (1, 0).
    p_t = (math.e / (math.e + 1), 1 / (math.e + 1))  # softmax(1, 0) = 0.7311, 0.2689
    p_s = (1 / (1 + math.exp(0.5)), math.exp(0.5) / (1 + math.exp(0.5)))  # 0.3775, 0.6225
    kl = sum(t * math.log(t / s) for t, s in zip(p_t, p_s, strict=True))  # 0.2574
    assert kl == pytest.approx(0.25740, abs=1e-5)
    soft = 2.0**2 * kl  # T^2 KL = 1.0296
    hard = math.log(1 + math.exp(-1))  # cross-entropy of (0, 1) on class 1: 0.3133
    huber = 1.5 - 0.5  # |0.5 - 2.0| = 1.5 > delta 1: delta * (|d| - delta / 2)
    want = 0.5 * soft + 0.5 * hard + 0.25 * huber  # weight 0.5, return_weight 0.25
    assert want == pytest.approx(0.92143, abs=1e-5)

    logits = torch.tensor([[[0.0, 1.0]]])  # [B=1, H=1, C=2]
    teacher = torch.tensor([[[2.0, 0.0]]])
    assert float(distillation_loss(logits, teacher, 2.0)) == pytest.approx(soft, abs=1e-6)
    got = student_loss(
        logits, torch.tensor([[0.5]]), teacher, torch.tensor([[1]]), torch.tensor([[2.0]]),
        LossConfig(return_weight=0.25), DistillConfig(temperature=2.0, weight=0.5),
    )  # fmt: skip
    assert float(got) == pytest.approx(want, abs=1e-6)


def test_the_soft_term_vanishes_when_the_student_matches_the_teacher() -> None:
    logits = torch.randn(5, 2, 3)
    assert float(distillation_loss(logits, logits.clone(), 3.0)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("temperature", "weight"), [(0.0, 0.5), (-1.0, 0.5), (2.0, -0.1), (2.0, 1.5), (math.nan, 0.5)]
)
def test_bad_settings_are_refused(temperature: float, weight: float) -> None:
    with pytest.raises(SpecError):
        DistillConfig(temperature, weight)


@pytest.mark.slow
def test_soft_labels_come_from_train_and_validation_windows_only(
    data: Dataset, teacher: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    fold, _ = data.final()
    soft = soft_labels(teacher, data, fold)
    dev, test = data.split.development, data.split.test
    assert soft.ends == dev and soft.logits.shape == (len(dev), 1, 2)
    assert soft.ends.stop + data.split.gap - 1 <= test.start  # the purge gap lies between
    with torch.no_grad():  # each row is the teacher's answer on the window ending there
        want = teacher(torch.from_numpy(np.ascontiguousarray(data.part(fold, dev).x[-3:])))[0]
    np.testing.assert_allclose(soft.logits[-3:], want.numpy(), atol=1e-6)

    trained: list[int] = []  # every window the student's loss saw
    call = SoftCriterion.__call__

    def spy(self: SoftCriterion, *args: torch.Tensor) -> torch.Tensor:
        trained.extend(args[-1].tolist())
        return call(self, *args)

    monkeypatch.setattr(SoftCriterion, "__call__", spy)
    fit_student(_student(), data, soft, 2, DistillConfig())
    assert sorted(trained) == sorted(list(dev) * 2)  # each development window once per epoch
    assert not set(trained) & set(test)


def test_a_window_without_a_soft_label_is_refused(data: Dataset, teacher: torch.nn.Module) -> None:
    fold, _ = data.final()
    soft = soft_labels(teacher, data, fold)
    criterion = SoftCriterion(soft, LossConfig(), DistillConfig(), torch.device("cpu"))
    logits, ret = torch.zeros(2, 1, 2), torch.zeros(2, 1)
    y, r = torch.zeros(2, 1, dtype=torch.int64), torch.zeros(2, 1)
    assert torch.isfinite(criterion(logits, ret, y, r, torch.tensor([soft.ends[0], soft.ends[-1]])))
    with pytest.raises(SpecError, match="outside the teacher's rows"):
        criterion(logits, ret, y, r, torch.tensor([soft.ends[-1], data.split.test.start]))


def test_soft_labels_of_another_refit_are_refused(data: Dataset, teacher: torch.nn.Module) -> None:
    fold = data.folds[0]  # the search's fold: its training rows are not the final refit's
    with pytest.raises(SpecError, match="not the same teacher refit"):
        fit_student(_student(), data, soft_labels(teacher, data, fold), 1, DistillConfig())


@pytest.mark.slow
def test_weight_zero_trains_exactly_the_plain_way(data: Dataset, teacher: torch.nn.Module) -> None:
    fold, _ = data.final()
    soft = soft_labels(teacher, data, fold)
    params = _student(seed=5, loss=LossConfig(return_weight=0.3))
    plain = fit_final(params, data, 2)
    student = fit_student(params, data, soft, 2, DistillConfig(weight=0.0))
    assert student.test == plain.test
    distilled = fit_student(params, data, soft, 2, DistillConfig(weight=0.5))
    assert distilled.test != plain.test  # the soft labels do change the student
