"""The figures traders judge a model by, against values computed by hand."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest

from xtune.export.build import scores_entry
from xtune.models import Metrics, TrainLog
from xtune.models._evaluate import Scores, balanced_accuracy, confident_accuracy
from xtune.runtime.trading import calmar, max_drawdown, rule_pnl, sharpe
from xtune.search.record import TrialRecord


def test_rule_pnl_goes_long_short_or_flat_and_pays_fees() -> None:
    predicted = np.array([2, 2, 0, 1])  # 3 classes: up, up, down, flat
    returns = np.array([0.01, -0.02, -0.03, 0.05])
    pnl = rule_pnl(predicted, returns, horizon=1, classes=3, fee=0.001)
    # long 0.01 - fee(0->1); long -0.02; short +0.03 - fee(1->-1: 2); flat 0 - fee(-1->0)
    np.testing.assert_allclose(pnl, [0.009, -0.02, 0.028, -0.001])


def test_max_drawdown_and_calmar_by_hand() -> None:
    pnl = np.array([0.1, -0.2, 0.05, -0.1, 0.3])
    # log equity 0, .1, -.1, -.05, -.15, .15; deepest fall from the peak .1 is to -.15
    assert max_drawdown(pnl) == pytest.approx(1 - math.exp(-0.25))
    assert calmar(pnl, per_year=252) == pytest.approx(
        math.expm1(0.03 * 252) / (1 - math.exp(-0.25))
    )
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0  # never below its peak
    assert sharpe(np.zeros(5), 1, 252) == 0.0


def test_balanced_accuracy_by_hand() -> None:
    """Unbalanced labels, so that balanced accuracy (7/12) differs from plain accuracy (5/8)
    and from the recall of the predictions taken as the truth (17/30)."""
    truth = np.array([[1], [1], [1], [1], [1], [1], [0], [0]])
    predicted = np.array([[1], [1], [1], [1], [0], [0], [0], [1]])
    # recall of up: 4 of 6, of down: 1 of 2
    assert balanced_accuracy(predicted, truth) == pytest.approx((4 / 6 + 1 / 2) / 2)
    assert (predicted == truth).mean() == pytest.approx(5 / 8)  # not what it returns
    assert balanced_accuracy(np.ones_like(truth), truth) == pytest.approx(0.5)  # a constant guess


def test_confident_accuracy_by_hand() -> None:
    confidence = np.array([0.9, 0.8, 0.55, 0.6, 0.7, 0.51, 0.52, 0.53, 0.54, 0.95])
    truth = np.zeros(10, dtype=int)
    predicted = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 0])  # right on 0.9 and 0.95, wrong on 0.8
    accuracy, coverage = confident_accuracy(predicted, truth, confidence, share=0.3)
    assert coverage == pytest.approx(0.3)
    assert accuracy == pytest.approx(2 / 3)


def test_edge_and_walk_forward_means() -> None:
    a = Scores(0.6, 0.68, 0.55, (0.6,), 1.0, 100, 0.58, 0.7, 0.3, 0.1, 2.0)
    b = Scores(0.5, 0.70, 0.50, (0.5,), 0.0, 100, 0.50, 0.5, 0.3, 0.3, 0.0)
    assert a.edge == pytest.approx(0.05)
    mean = Scores.mean([a, b])
    assert (mean.max_drawdown, mean.calmar, mean.samples) == (pytest.approx(0.2), 1.0, 200)


SCORES = Scores(
    accuracy=0.6,
    loss=0.65,
    baseline=0.52,
    per_horizon=(0.6, 0.58),
    sharpe=1.2,
    samples=300,
    balanced_accuracy=0.57,
    confident_accuracy=0.7,
    coverage=0.3,
    max_drawdown=0.1,
    calmar=2.5,
    bars_per_year=6048.0,
)


def test_values_are_the_objectives_in_their_order_as_floats() -> None:
    got = SCORES.values(("loss", "edge", "accuracy", "samples"))
    assert got == pytest.approx((0.65, 0.08, 0.6, 300.0))
    assert all(type(v) is float for v in got)  # what optuna stores, samples included


def test_to_dict_names_every_field_and_the_edge_and_rebuilds_the_scores() -> None:
    d = SCORES.to_dict()
    assert set(d) == {f.name for f in fields(Scores)} | {"edge"}
    assert d["per_horizon"] == [0.6, 0.58] and d["edge"] == SCORES.edge
    json.dumps(d)  # a plain record: numbers and one list
    kept = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k != "edge"}
    assert Scores(**kept) == SCORES  # type: ignore[arg-type]


def test_the_trial_record_and_the_manifest_take_their_figures_from_to_dict() -> None:
    attrs = TrialRecord(metrics=Metrics(SCORES, TrainLog((), 1, 1, 0.5, ""))).to_attrs()
    assert {k: v for k, v in attrs.items() if k.startswith("metrics/")} == {
        f"metrics/{k}": v for k, v in SCORES.to_dict().items()
    }
    manifest = {
        "accuracy": 0.6,
        "loss": 0.65,
        "baseline_accuracy": 0.52,
        "edge": SCORES.edge,
        "balanced_accuracy": 0.57,
        "confident_accuracy": 0.7,
        "coverage": 0.3,
        "sharpe": 1.2,
        "max_drawdown": 0.1,
        "calmar": 2.5,
        "samples": 300,
    }
    assert list(scores_entry(SCORES).items()) == list(manifest.items())  # names and order
