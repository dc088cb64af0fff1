"""What one search on known-answer bars achieved: every trained trial's test edge (its refit on
train + validation, scored once on the test part, as ``xtune export`` does) beside the Bayes
edge on the very same test rows, and what the export's default pick gets."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna
from _known import BayesRate, Problem, bayes_rate
from optuna.trial import FrozenTrial, TrialState

from xtune.export.build import refit_trial
from xtune.export.pick import ExportError, pick_trial
from xtune.search.config import StudyConfig
from xtune.search.record import share_of, status_of
from xtune.search.report import is_feasible, luck, pareto_front
from xtune.search.states import is_trained
from xtune.settings import Settings

REACH = 0.8  # the share of the Bayes edge a trial must reach


@dataclass(frozen=True)
class TrialTest:
    """A trained trial's test edge and the Bayes rate on its test rows."""

    number: int
    edge: float
    bayes: BayesRate

    @property
    def share(self) -> float:
        """Test edge over the Bayes edge (realized; NaN where that is not above 0)."""
        return self.edge / self.bayes.edge if self.bayes.edge > 0 else math.nan


def test_trials(
    config: StudyConfig, study: optuna.Study, problem: Problem, settings: Settings
) -> dict[int, TrialTest]:
    """Refit every feasible trained trial and score it on the test part."""
    out = {}
    index = problem.bars.index
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if status_of(t) != "ok" or not is_feasible(t):
            continue
        refit = refit_trial(config, t, settings)
        test = refit.dataset.split.test
        rows = index.get_indexer(refit.dataset.times[test.start : test.stop])
        assert (rows >= 0).all()
        out[t.number] = TrialTest(
            t.number, refit.final.test.edge, bayes_rate(problem.p_up[rows], problem.up[rows])
        )
    return out


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(trials, key=lambda t: t.datetime_complete or t.datetime_start)  # type: ignore[arg-type,return-value]


def _pick(study: optuna.Study, prefix: list[FrozenTrial]) -> FrozenTrial | None:
    """What ``xtune export`` would pick had the search stopped after ``prefix``."""
    sub = optuna.create_study(directions=study.directions)
    sub.add_trials(prefix)
    try:
        return prefix[pick_trial(sub).number]  # numbers follow the order added
    except ExportError:
        return None


@dataclass(frozen=True)
class Reach:
    """Budget spent (trained trials; a stopped trial counts its share) when a trial's test
    edge first reached ``REACH`` of the Bayes edge: the export's pick, or any trial."""

    winner: float
    any_trial: float


def reach(study: optuna.Study, tests: dict[int, TrialTest]) -> Reach:
    spent, winner, any_trial = 0.0, math.inf, math.inf
    prefix: list[FrozenTrial] = []
    for t in _finished(study):
        prefix.append(t)
        if status_of(t) == "infeasible":
            continue
        spent += 1.0 if is_trained(t) else share_of(t)
        test = tests.get(t.number)
        if test is not None and test.share >= REACH and math.isinf(any_trial):
            any_trial = spent
        if math.isinf(winner) and test is not None:
            picked = _pick(study, prefix)
            if picked is not None and tests[picked.number].share >= REACH:
                winner = spent
    return Reach(winner, any_trial)


@dataclass(frozen=True)
class Outcome:
    """The exported winner against the Bayes edge and the best trial, and the luck guard."""

    winner: TrialTest
    best_edge: float  # the best test edge among all trained trials
    front: int
    front_lucky: int  # front trials the luck guard marks "not distinguishable from luck"
    trained: int

    @property
    def price(self) -> float:
        """The winner's test edge over the best one: the price of choosing on validation."""
        return self.winner.edge / self.best_edge if self.best_edge > 0 else math.nan

    @property
    def z(self) -> float:
        """The winner's test edge in standard errors of an edge on its test rows."""
        return self.winner.edge / self.winner.bayes.noise


def outcome(study: optuna.Study, tests: dict[int, TrialTest]) -> Outcome | None:
    """None: no feasible trial trained, nothing to export."""
    if not tests:
        return None
    front = pareto_front(study)
    winner = tests[pick_trial(study).number]
    lucky = sum(luck(study, t).lucky for t in front)
    best = float(np.max([x.edge for x in tests.values()]))
    return Outcome(winner, best, len(front), lucky, len(tests))
