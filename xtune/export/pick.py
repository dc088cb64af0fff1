"""Which trial to export: one from the feasible Pareto front, by number or by a rule."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from xtune.errors import ExportError
from xtune.models import Scores
from xtune.search._replay import find_trial
from xtune.search.record import read
from xtune.search.report import pareto_front
from xtune.search.states import is_trained

RULES = ("accuracy", "loss", "knee")


def _val(t: FrozenTrial) -> Scores:
    metrics = read(t).metrics
    assert metrics is not None  # front trials are trained
    return metrics.val


def _acc(t: FrozenTrial) -> float:
    return _val(t).accuracy


def _loss(t: FrozenTrial) -> float:
    return _val(t).loss


def pick_trial(
    study: optuna.Study, *, rule: str = "accuracy", number: int | None = None, force: bool = False
) -> FrozenTrial:
    """The trial to export.

    Rules: ``accuracy`` (default): highest validation accuracy, ties broken by lower loss;
    ``loss``: lowest validation loss, ties broken by higher accuracy; ``knee``: the front trial
    closest to the ideal point once accuracy and loss are scaled to [0, 1] over the front.

    Raises:
        ExportError: no feasible trained trial, an unknown rule, or ``number`` not on the front
            (allowed with ``force`` if that trial was trained).
    """
    front = pareto_front(study)
    if number is not None:
        trial = find_trial(study, number)
        if trial in front or (force and is_trained(trial)):
            return trial
        on_front = [t.number for t in front]
        if not is_trained(trial):
            raise ExportError(
                f"trial {number} was not trained ({read(trial).reason or trial.state.name}); it cannot be exported."
            )
        raise ExportError(
            f"trial {number} is not on the feasible Pareto front {on_front}; pick one of those, "
            "or pass --force to export it anyway."
        )
    if rule not in RULES:
        raise ExportError(f"unknown pick rule {rule!r}; use one of {', '.join(RULES)}.")
    if not front:
        raise ExportError(
            f"study '{study.study_name}' has no feasible trained trial yet; run `xtune search` "
            "(or relax the caps) first."
        )
    if rule == "accuracy":
        return max(front, key=lambda t: (_acc(t), -_loss(t)))
    if rule == "loss":
        return min(front, key=lambda t: (_loss(t), -_acc(t)))
    accs, losses = [_acc(t) for t in front], [_loss(t) for t in front]

    def distance(t: FrozenTrial) -> float:
        a = (_acc(t) - min(accs)) / ((max(accs) - min(accs)) or 1.0)  # 1 = best
        b = (max(losses) - _loss(t)) / ((max(losses) - min(losses)) or 1.0)  # 1 = best
        return float((1 - a) ** 2 + (1 - b) ** 2)

    return min(front, key=lambda t: (distance(t), t.number))
