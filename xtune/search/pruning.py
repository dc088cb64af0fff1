"""Early stopping for multi-objective trials: successive halving by non-dominated rank.

Optuna cannot prune a multi-objective trial (``trial.report`` raises), so xtune judges its own
rungs. A trial reports its validation objectives at rungs (after epochs 2, 6, 18... of its
first walk-forward fold, and after every fold but the last; see :class:`xtune.models.Rungs`).
At each rung it is compared with every other trial of the study that reached the same rung:
the values of all of them are sorted into non-dominated fronts, and the trial is stopped when
at least half of the others lie in strictly better fronts than its own (a multi-objective
median rule: with one objective, it is Optuna's ``MedianPruner``). Nothing is judged before
``MIN_TRIALS`` others have reached the rung.

A stopped trial is stored COMPLETE with the values it had at its rung and the status
``stopped``: TPE, NSGA-II and GP then all learn from it as a poor configuration (Optuna's
NSGA-II and GP ignore PRUNED trials, and its multi-objective TPE ranks them below every complete
one, whatever their values). The front, the export and the luck guard's best pick never use
a stopped trial (the luck guard does count it among the N tried); it costs the budget the
share of its training it did (:func:`xtune.search.budget.spent`).

Measured (``bench/pruning.py``, README): at equal compute this rule ran two-thirds more
configurations and ended with a higher front than no early stopping; a more aggressive one
(stop unless in the best third, rungs from epoch 1) ended lower.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from xtune.models import Rungs, Scores, Stopped
from xtune.search.record import TrialRecord, rungs_of, write

MIN_TRIALS = 5  # others at a rung before it judges anyone
STOP_SHARE = 0.5  # stop when at least this share of the others rank in better fronts
FIRST_EPOCH, ETA = 2, 3  # epoch rungs of the first fold: 2, 6, 18, ...


def rung_epochs(epochs: int) -> frozenset[int]:
    """The first fold's rung epochs below ``epochs`` (the last epoch is the fold's end)."""
    out, e = set(), FIRST_EPOCH
    while e < epochs:
        out.add(e)
        e *= ETA
    return frozenset(out)


def share_done(rung: str, epochs: int, folds: int) -> float:
    """The share of a trial's planned training (``epochs`` on each of ``folds``) done when
    it reaches ``rung``: what a trial stopped there costs the budget."""
    fold, _, epoch = rung.partition("/")
    done = int(fold.removeprefix("fold")) + 1
    if epoch:
        return int(epoch.removeprefix("epoch")) / (epochs * folds)
    return done / folds


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
    trials compare with it), then stops it when it ranks in the worse half of its rung."""

    def __init__(self, trial: optuna.Trial, objectives: Sequence[str], signs: Sequence[float]):
        self.trial, self.objectives, self.signs = trial, tuple(objectives), tuple(signs)
        self.reached: dict[str, tuple[float, ...]] = {}

    def rungs(self, epochs: int) -> Rungs:
        return Rungs(rung_epochs(epochs), self)

    def __call__(self, rung: str, scores: Scores) -> None:
        values = tuple(float(getattr(scores, o)) for o in self.objectives)
        self.reached[rung] = values
        write(self.trial, TrialRecord(rungs=dict(self.reached)))
        reached = (
            rungs_of(t) for t in self.trial.study.get_trials(deepcopy=False)
            if t.number != self.trial.number
        )  # fmt: skip
        others = [r[rung] for r in reached if rung in r]
        if len(others) < MIN_TRIALS:
            return
        share = better_share(values, others, self.signs)
        if share >= STOP_SHARE:
            raise Stopped(
                rung,
                scores,
                f"stopped early at {rung}: {share:.0%} of the {len(others)} trials that "
                "reached it rank in better non-dominated fronts",
            )
