"""Early stopping for multi-objective trials: successive halving by non-dominated rank.

Optuna cannot prune a multi-objective trial (``trial.report`` raises), so xtune judges its own
rungs. A trial reports its validation objectives at rungs (after epochs 2, 6, 18... of its
first walk-forward fold, and after every fold but the last; see :class:`xtune.models.Rungs`).
At each rung it is compared with every other trial of the study that reached the same rung:
the values of all of them are sorted into non-dominated fronts, and the trial is stopped when
at least ``STOP_SHARE`` of the others (half: with one objective, Optuna's ``MedianPruner``)
lie in strictly better fronts at an epoch rung, or ``FOLD_STOP_SHARE`` of them (a third) at a
fold rung. A fold's mean score ranks trials much as their final score does (on the bench's
recorded runs, rank correlation with the final log loss 0.66-0.77 after the first of three
folds and 0.81-0.84 after the second, but 0.26-0.40 after two epochs), so a fold rung may
judge harder. Nothing is judged before ``MIN_TRIALS`` others have reached
the rung.

A stopped trial is stored COMPLETE with the values it had at its rung and the status
``stopped``: TPE, NSGA-II and GP then all learn from it as a poor configuration (Optuna's
NSGA-II and GP ignore PRUNED trials, and its multi-objective TPE ranks them below every complete
one, whatever their values). The front, the export and the luck guard's best pick never use
a stopped trial (the luck guard does count it among the N tried). It costs the budget the
compute it used: its time over the mean time of the study's trained trials
(:func:`share_done`, :func:`xtune.search.budget.spent`), so a budget of N trials is about N
trainings of compute with early stopping on or off.

Measured (``bench/pruning.py``, README): see the README's table; the rule and its two shares
were chosen on recorded runs (every epoch and fold judged offline) and checked on other seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from xtune.models import Rungs, Scores, Stopped
from xtune.search.record import TrialRecord, rungs_of, write

MIN_TRIALS = 5  # others at a rung before it judges anyone
STOP_SHARE = 0.5  # at an epoch rung: stop when at least this share of the others rank better
FOLD_STOP_SHARE = 1 / 3  # at a fold rung, where the scores say more
FIRST_EPOCH, ETA = 2, 3  # epoch rungs of the first fold: 2, 6, 18, ...


def rung_epochs(epochs: int) -> frozenset[int]:
    """The first fold's rung epochs below ``epochs`` (the last epoch is the fold's end)."""
    out, e = set(), FIRST_EPOCH
    while e < epochs:
        out.add(e)
        e *= ETA
    return frozenset(out)


def planned_share(rung: str, epochs: int, folds: int) -> float:
    """The share of a trial's planned training (``epochs`` on each of ``folds``) done when
    it reaches ``rung``."""
    fold, _, epoch = rung.partition("/")
    done = int(fold.removeprefix("fold")) + 1
    if epoch:
        return int(epoch.removeprefix("epoch")) / (epochs * folds)
    return done / folds


def share_done(
    rung: str, epochs: int, folds: int, seconds: float, trained: Sequence[float]
) -> float:
    """What a trial stopped at ``rung`` after ``seconds`` costs the budget: those seconds over
    the mean of the study's trained trials (``trained``: how long each took), at most 1. Trained trials rarely run every planned epoch (their own early stopping on
    validation loss ends most of them halfway), so the planned share alone would undercharge
    a stopped trial; it serves until ``MIN_TRIALS`` trials have trained."""
    if len(trained) < MIN_TRIALS:
        return planned_share(rung, epochs, folds)
    return min(1.0, seconds / (sum(trained) / len(trained)))


def dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (signs: +1 max)."""
    pairs = [(s * x, s * y) for x, y, s in zip(a, b, signs, strict=True)]
    return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)


def front_ranks(points: Sequence[Sequence[float]], signs: Sequence[float]) -> list[int]:
    """Non-dominated sorting: 0 for the Pareto front, 1 for the front once it is removed..."""
    ranks, left, rank = [0] * len(points), set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i], signs) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def better_share(
    point: Sequence[float], others: Sequence[Sequence[float]], signs: Sequence[float]
) -> float:
    """The share of ``others`` in strictly better non-dominated fronts than ``point``."""
    if not others:
        return 0.0
    ranks = front_ranks([*others, point], signs)
    mine = ranks[-1]
    return sum(r < mine for r in ranks[:-1]) / len(others)


class Pruner:
    """The judge of one trial's rungs: records its values at each rung on the trial (so later
    trials compare with it), then stops it when it ranks in the worse half of an epoch rung,
    or outside the best third of a fold rung."""

    def __init__(self, trial: optuna.Trial, objectives: Sequence[str], signs: Sequence[float]):
        self.trial, self.objectives, self.signs = trial, tuple(objectives), tuple(signs)
        self.reached: dict[str, tuple[float, ...]] = {}

    def rungs(self, epochs: int) -> Rungs:
        return Rungs(rung_epochs(epochs), self)

    def __call__(self, rung: str, scores: Scores) -> None:
        values = scores.values(self.objectives)
        self.reached[rung] = values
        write(self.trial, TrialRecord(rungs=dict(self.reached)))
        reached = (
            rungs_of(t)
            for t in self.trial.study.get_trials(deepcopy=False)
            if t.number != self.trial.number
        )
        others = [r[rung] for r in reached if rung in r]
        if len(others) < MIN_TRIALS:
            return
        share = better_share(values, others, self.signs)
        if share >= (STOP_SHARE if "/" in rung else FOLD_STOP_SHARE):
            raise Stopped(
                rung,
                scores,
                f"stopped early at {rung}: {share:.0%} of the {len(others)} trials that "
                "reached it rank in better non-dominated fronts",
            )
