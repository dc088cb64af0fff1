"""The budget counts trained trials. A draw over a cap that is known before training
(parameters, latency) is stored as infeasible, so the sampler learns the boundary, but costs
no training and no budget. A space that almost never fits its caps stops with the cap named."""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtune.errors import XtuneError
from xtune.search.record import status_of

STREAK_PER_BUDGET = 20  # infeasible draws in a row, per trial of budget, before giving up


class InfeasibleSpace(XtuneError):
    """Nearly every configuration of the space breaks a cap; the message names the cap."""


def is_trained(trial: FrozenTrial) -> bool:
    """A COMPLETE trial that trained (successfully or not): what the budget counts."""
    return trial.state == TrialState.COMPLETE and status_of(trial) != "infeasible"


def count_trained(study: optuna.Study) -> int:
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_trained(t)
    )


class Budget:
    """An ``optimize`` callback: stop at ``target`` trained trials, or after ``limit``
    infeasible draws in a row (then :meth:`check` raises, naming the caps broken)."""

    def __init__(self, target: int, budget: int) -> None:
        self.target, self.limit = target, STREAK_PER_BUDGET * budget
        self.streak, self.broken = 0, Counter[str]()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE and not is_trained(trial):
            self.streak += 1
            self.broken.update(k for k, v in trial.constraints.items() if v > 0)
        elif trial.state == TrialState.COMPLETE:
            self.streak, self.broken = 0, Counter()
        if self.streak >= self.limit or count_trained(study) >= self.target:
            study.stop()

    def check(self) -> None:
        if self.streak < self.limit:
            return
        caps = ", ".join(f"{k} ({n} times)" for k, n in self.broken.most_common())
        raise InfeasibleSpace(
            f"the last {self.streak} configurations drawn all broke a cap: {caps}. Raise that "
            "cap in [caps], or narrow the space (smaller [model] sizes, fewer features, a "
            "shorter [data] window) so that most configurations fit."
        )
