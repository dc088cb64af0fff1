"""The report's numbers: the feasible front and importances with the right direction."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from xtune.models import Metrics, Scores, TrainLog
from xtune.search.plots import _importances
from xtune.search.record import TrialRecord
from xtune.search.report import pareto_front


def _record(acc: float, loss: float, feasible: bool) -> TrialRecord:
    if not feasible:
        return TrialRecord(status="infeasible", feasible=False)
    scores = Scores(acc, loss, 0.5, (acc,), 0.0, 100)
    return TrialRecord(
        status="ok", feasible=True, metrics=Metrics(scores, TrainLog((), 1, 1, 0.1, ""))
    )


def _trial(
    a: float, b: float, acc: float, loss: float, feasible: bool = True
) -> optuna.trial.FrozenTrial:
    return create_trial(
        params={"a": a, "b": b},
        distributions={"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)},
        values=[acc, loss],
        user_attrs=_record(acc, loss, feasible).to_attrs(),
        constraints={"params": -0.5 if feasible else 0.5},
    )


def test_importance_of_a_maximized_objective_points_at_what_makes_it_high() -> None:
    """Accuracy rises when a > 0.9 and falls when b < 0.1. What makes accuracy HIGH is `a`; a
    report that forgot the direction (PED-ANOVA looks at the low end) would name `b`."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(200):
        a, b = float(rng.random()), float(rng.random())
        acc = 0.5 + 0.1 * (a > 0.9) - 0.1 * (b < 0.1) + 0.001 * rng.random()
        study.add_trial(_trial(a, b, acc, 0.69 + 0.01 * rng.random()))
    trials = study.get_trials()
    rows = {name: (value, sign) for name, value, sign in _importances(study, 0, trials)}
    assert rows["a"][0] > 3 * rows["b"][0], rows
    assert rows["a"][1] > 0  # larger a helps accuracy


def test_the_front_ignores_infeasible_and_dominated_trials() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_trial(0.1, 0.1, 0.60, 0.68))  # best on both
    study.add_trial(_trial(0.2, 0.2, 0.55, 0.69))  # dominated
    study.add_trial(_trial(0.3, 0.3, 0.90, 0.10, feasible=False))  # over a cap: never on the front
    study.add_trial(_trial(0.4, 0.4, 0.58, 0.60))  # trade-off: on the front
    assert [t.number for t in pareto_front(study)] == [0, 3]


def test_a_stopped_trial_is_never_on_the_front_even_where_nothing_dominates_it() -> None:
    """Early stopping's values are one rung's, not a trained model's: a stopped trial that no
    trained one dominates must still stay off the front (nothing there could be exported)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_trial(0.1, 0.1, 0.60, 0.68))
    stopped = _trial(0.2, 0.2, 0.70, 0.50)  # better on both than the trained one
    stopped.user_attrs.update(
        TrialRecord(status="stopped", reason="stopped early at fold0/2: worse").to_attrs()
    )
    study.add_trial(stopped)
    assert [t.number for t in pareto_front(study)] == [0]
