"""What a study found: state counts, the feasible Pareto front and the trader's own setups, as
one typed :class:`StudySummary` (``xtune status`` prints it, ``status --format json`` is its
:meth:`~StudySummary.to_json`). The plots are :mod:`xtune.search.plots`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from xtune.models._evaluate import AVERAGED
from xtune.runtime.trading import annualization, bars_per_span
from xtune.search.budget import spent
from xtune.search.luck import Luck, deflated_sharpe, edge_bar
from xtune.search.pruning import dominates
from xtune.search.record import TrialRecord, label_of, read, status_of
from xtune.search.states import (
    has_scores,
    is_diverged,
    is_failed,
    is_over_cap,
    is_refused,
    is_stopped,
    is_trained,
    is_tried,
    other_bars,
)
from xtune.search.study_record import StudyRecord, read_study


def is_feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objective names (``objective_0``... for a study created without them)."""
    return study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Complete, feasible, trained trials that no other such trial dominates."""
    signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
    pool = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t) and is_trained(t) and t.values is not None
    ]
    front = [
        t for t in pool if not any(dominates(o.values, t.values, signs) for o in pool if o is not t)
    ]
    return sorted(front, key=lambda t: t.number)


def _bars_per_year(record: TrialRecord) -> float:
    """The bars per year that annualized the trial's Sharpe ratio, stored with its scores; a
    trial stored without it: its bars' row count over their time span."""
    import pandas as pd

    assert record.metrics is not None and record.data is not None
    if record.metrics.val.bars_per_year > 0:
        return record.metrics.val.bars_per_year
    start, _, end = record.data.span.partition(" .. ")
    seconds = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    return bars_per_span(record.data.rows, seconds)


def _per_bar_sharpe(record: TrialRecord) -> float:
    """The trial's validation Sharpe ratio with its annualization divided back out."""
    assert record.metrics is not None and record.plan is not None
    horizon = record.plan.data.labels.horizons[0]  # the horizon the trading rule trades
    return record.metrics.val.sharpe / annualization(horizon, _bars_per_year(record))


@dataclass(frozen=True)
class Tried:
    """What the best was picked from: every configuration tried (N), and the records of
    those with real validation scores (the spread of their Sharpe ratios)."""

    n: int
    scored: list[TrialRecord]

    @classmethod
    def of(cls, study: optuna.Study) -> Tried:
        tried = [t for t in study.get_trials(deepcopy=False) if is_tried(t)]
        return cls(len(tried), [read(t) for t in tried if has_scores(t)])


def luck(study: optuna.Study, trial: FrozenTrial) -> Luck:
    """How far the trial's edge and Sharpe stand above what picking the best of this study's
    trials would give by chance (see :mod:`xtune.search.luck`)."""
    return _luck(read(trial), Tried.of(study))


def _luck(r: TrialRecord, tried: Tried) -> Luck:
    assert r.metrics is not None and r.plan is not None
    val, horizon = r.metrics.val, r.plan.data.labels.horizons[0]
    bar = edge_bar(tried.n, val.samples, val.baseline, r.plan.data.labels.max_horizon)
    sharpes = [_per_bar_sharpe(t) for t in tried.scored]
    dsr = deflated_sharpe(_per_bar_sharpe(r), sharpes, val.samples / horizon, tried.n)
    return Luck(
        bar.trials,
        bar.noise,
        bar.expected_best_edge,
        bar.edge_bar,
        bar.lucky(val.edge),
        dsr,
        _bars_per_year(r),
    )


@dataclass(frozen=True)
class FrontRow:
    """One trial of the feasible Pareto front, with what a trader weighs it by (validation)."""

    trial: int
    values: dict[str, float]  # objective name -> value, in the study's order
    baseline_accuracy: float  # always guessing the majority class
    edge: float  # accuracy - baseline_accuracy
    sharpe: float
    validation: dict[str, float]  # every averaged validation score
    family: str
    params: int
    latency_ms: float
    window: int
    features: int
    units: tuple[str, ...]
    other_bars: bool  # trained on other bars than the study was created with
    label: str | None  # the trader's own setup it is, if any
    luck: Luck
    parameters: dict[str, Any]  # the sampled parameters, as ``xtune enqueue`` takes them

    @classmethod
    def of(
        cls, t: FrozenTrial, names: list[str], created: StudyRecord | None, tried: Tried
    ) -> FrontRow:
        r = read(t)
        assert r.metrics is not None and r.resources is not None and r.plan is not None
        assert r.data is not None and t.values is not None
        val = r.metrics.val
        return cls(
            t.number,
            dict(zip(names, t.values, strict=True)),
            val.baseline,
            val.edge,
            val.sharpe,
            {k: getattr(val, k) for k in AVERAGED},
            r.plan.params.model.family,
            r.resources.params,
            r.resources.latency_ms,
            r.plan.data.window,
            len(r.plan.data.features),
            r.plan.units,
            other_bars(r.data, created),
            r.label,
            _luck(r, tried),
            dict(t.params),
        )

    def to_dict(self) -> dict[str, Any]:
        """The objective values first, under their names, then one key per other field."""
        return {
            "trial": self.trial,
            **self.values,
            "baseline_accuracy": self.baseline_accuracy,
            "edge": self.edge,
            "sharpe": self.sharpe,
            "validation": self.validation,
            "family": self.family,
            "params": self.params,
            "latency_ms": self.latency_ms,
            "window": self.window,
            "features": self.features,
            "units": list(self.units),
            "other_bars": self.other_bars,
            "label": self.label,
            "luck": self.luck.to_dict(),
            "parameters": self.parameters,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], names: list[str]) -> FrontRow:
        return cls(
            raw["trial"],
            {n: raw[n] for n in names},
            raw["baseline_accuracy"],
            raw["edge"],
            raw["sharpe"],
            raw["validation"],
            raw["family"],
            raw["params"],
            raw["latency_ms"],
            raw["window"],
            raw["features"],
            tuple(raw["units"]),
            raw["other_bars"],
            raw["label"],
            Luck.from_dict(raw["luck"]),
            raw["parameters"],
        )


@dataclass(frozen=True)
class SeededRow:
    """A trader's own setup (queued with a label) and how it fared, on the front or not."""

    trial: int
    label: str
    state: str  # Optuna's state name
    status: str | None  # xtune's status (:mod:`xtune.search.record`)
    on_front: bool
    values: dict[str, float]  # objective name -> value; empty unless trained within the caps

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "label": self.label,
            "state": self.state,
            "status": self.status,
            "on_front": self.on_front,
            **self.values,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], names: list[str]) -> SeededRow:
        values = {n: raw[n] for n in names if n in raw}
        return cls(raw["trial"], raw["label"], raw["state"], raw["status"], raw["on_front"], values)


@dataclass(frozen=True)
class StudySummary:
    """What ``xtune status`` reports: trials counted by what became of them
    (:mod:`xtune.search.states`), the budget spent, the feasible Pareto front and the trader's
    own setups.

    ``to_json`` writes one flat object, the keys in field order (``plots`` only when set);
    ``from_json`` reads it back.
    """

    study: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]  # "maximize" / "minimize", per objective
    states: dict[str, int]  # Optuna's state name -> trials
    feasible: int  # complete trials within every cap
    infeasible: int  # over a cap: never trained
    trained: int
    diverged: int
    stopped: int  # ended by early stopping
    budget_spent: float  # in trained trials' worth of training
    refused: int
    failed: int
    pareto_front: tuple[FrontRow, ...]
    seeded: tuple[SeededRow, ...]
    plots: tuple[str, ...] | None = None  # the files written, where plots were asked for

    def with_plots(self, paths: list[str]) -> StudySummary:
        return replace(self, plots=tuple(paths))

    def to_dict(self) -> dict[str, Any]:
        out = {
            "study": self.study,
            "objectives": list(self.objectives),
            "directions": list(self.directions),
            "states": self.states,
            "feasible": self.feasible,
            "infeasible": self.infeasible,
            "trained": self.trained,
            "diverged": self.diverged,
            "stopped": self.stopped,
            "budget_spent": self.budget_spent,
            "refused": self.refused,
            "failed": self.failed,
            "pareto_front": [r.to_dict() for r in self.pareto_front],
            "seeded": [r.to_dict() for r in self.seeded],
        }
        return out if self.plots is None else out | {"plots": list(self.plots)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> StudySummary:
        raw = json.loads(text)
        names, plots = list(raw["objectives"]), raw.get("plots")
        counts = ("feasible", "infeasible", "trained", "diverged", "stopped", "refused", "failed")
        return cls(
            study=raw["study"],
            objectives=tuple(names),
            directions=tuple(raw["directions"]),
            states=raw["states"],
            budget_spent=raw["budget_spent"],
            pareto_front=tuple(FrontRow.from_dict(r, names) for r in raw["pareto_front"]),
            seeded=tuple(SeededRow.from_dict(r, names) for r in raw["seeded"]),
            plots=None if plots is None else tuple(plots),
            **{k: raw[k] for k in counts},
        )


def summary(study: optuna.Study) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    names = objective_names(study)
    created, tried, front = read_study(study), Tried.of(study), pareto_front(study)
    return StudySummary(
        study=study.study_name,
        objectives=tuple(names),
        directions=tuple(d.name.lower() for d in study.directions),
        states=dict(Counter(t.state.name for t in trials)),
        feasible=sum(1 for t in complete if is_feasible(t)),
        infeasible=sum(1 for t in trials if is_over_cap(t)),
        trained=sum(1 for t in complete if is_trained(t)),
        diverged=sum(1 for t in complete if is_diverged(t)),
        stopped=sum(1 for t in complete if is_stopped(t)),
        budget_spent=round(spent(study), 3),
        refused=sum(1 for t in trials if is_refused(t)),
        failed=sum(1 for t in trials if is_failed(t)),
        pareto_front=tuple(FrontRow.of(t, names, created, tried) for t in front),
        seeded=_seeded(trials, names, {t.number for t in front}),
    )


def _seeded(trials: list[FrozenTrial], names: list[str], front: set[int]) -> tuple[SeededRow, ...]:
    """The trader's own setups (queued with a label): how each fared, on the front or not."""
    rows = []
    for t in trials:
        label = label_of(t)
        if label is None:
            continue
        values: dict[str, float] = {}
        if is_trained(t) and t.values is not None and is_feasible(t):
            values = dict(zip(names, t.values, strict=True))
        rows.append(
            SeededRow(t.number, label, t.state.name, status_of(t), t.number in front, values)
        )
    return tuple(rows)
