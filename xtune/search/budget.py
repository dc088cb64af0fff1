"""The budget counts trials trained to their end (a diverged one too: it spent the compute;
see :mod:`xtune.search.states`). A draw over a cap that is known before training
(parameters, latency) is stored as infeasible, so the sampler learns the boundary, but costs
no training and no budget. A trial that early stopping ended counts the compute it used: its
time over the mean trained trial's (:func:`xtune.search.pruning.share_done`), so a
budget of N trials is about N trainings of compute with early stopping on or off.

Two kinds of draw spend no budget, so a worker stops on a streak of them rather than loop
forever: a space that almost never fits its caps stops with the cap named, and training that
raises on every try (a bug in a custom feature, a device out of memory) stops with the error
named after ``FAULT_STREAK`` failed trials in a row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtune.errors import InfeasibleSpace, TrainingKeepsFailing
from xtune.search.record import read, share_of
from xtune.search.states import is_over_cap, is_stopped, ran_in_full

STREAK_PER_BUDGET = 20  # infeasible draws in a row, per trial of budget, before giving up
FAULT_STREAK = 10  # trials whose training raised, in a row with none trained, before giving up


def full_runs(study: optuna.Study) -> int:
    """Trials trained to their end, diverged or not: one trial of budget each."""
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if ran_in_full(t)
    )


def spent(study: optuna.Study) -> float:
    """The budget used: 1 per trial trained to its end (diverged or not) plus each stopped
    trial's share (its compute). A trial over a cap costs nothing."""
    return spent_in(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def spent_in(trials: Sequence[FrozenTrial]) -> float:
    """:func:`spent` of a list of the study's trials already read (any states)."""
    return sum(1.0 if ran_in_full(t) else share_of(t) if is_stopped(t) else 0.0 for t in trials)


class Budget:
    """Called after each trial (with the trials the worker read then): stop the study once
    ``target`` trials' worth of training is spent (see :func:`spent`), after ``limit`` infeasible draws in a row, or after ``FAULT_STREAK`` failed
    trainings in a row (then :meth:`check` raises, naming the caps broken or the error)."""

    def __init__(self, target: int, budget: int) -> None:
        self.target, self.limit = target, STREAK_PER_BUDGET * budget
        self.streak, self.broken = 0, Counter[str]()
        self.faults, self.last_fault = 0, ""

    def __call__(
        self, study: optuna.Study, trial: FrozenTrial, trials: Sequence[FrozenTrial]
    ) -> None:
        """After ``trial`` finished, with the study's ``trials`` as read then."""
        if is_over_cap(trial):
            self.streak += 1
            self.broken.update(k for k, v in trial.constraints.items() if v > 0)
        elif trial.state == TrialState.COMPLETE:  # trained, in full or until stopped early
            self.streak, self.broken = 0, Counter()
            self.faults = 0
        elif trial.state == TrialState.FAIL:
            self.faults += 1
            self.last_fault = f"trial {trial.number}: {read(trial).reason or 'no reason recorded'}"
        if (
            self.streak >= self.limit
            or self.faults >= FAULT_STREAK
            or spent_in(trials) >= self.target - 1e-9
        ):
            study.stop()

    def check(self) -> None:
        if self.faults >= FAULT_STREAK:
            raise TrainingKeepsFailing(
                f"the last {self.faults} trials all failed in training, the last one with "
                f"{self.last_fault}. Fix that error (a custom feature, the device's memory: "
                "smaller [model] sizes or [train] batch_size) and run the search again; finished "
                "trials are kept."
            )
        if self.streak < self.limit:
            return
        caps = ", ".join(f"{k} ({n} times)" for k, n in self.broken.most_common())
        raise InfeasibleSpace(
            f"the last {self.streak} configurations drawn all broke a cap: {caps}. Raise that "
            "cap in [caps], or narrow the space (smaller [model] sizes, fewer features, a "
            "shorter [data] window) so that most configurations fit."
        )
