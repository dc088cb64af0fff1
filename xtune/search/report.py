"""What a study found: state counts, the feasible Pareto front, and plots (HTML and PNG)."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from xtune.models._evaluate import AVERAGED
from xtune.runtime.trading import annualization, bars_per_span
from xtune.search.budget import spent
from xtune.search.luck import deflated_sharpe, edge_bar
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


def _baseline(trial: FrozenTrial) -> float:
    metrics = read(trial).metrics
    return math.nan if metrics is None else metrics.val.baseline


def _units(trial: FrozenTrial) -> tuple[str, ...]:
    plan = read(trial).plan
    return () if plan is None else plan.units


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Complete, feasible, trained trials that no other such trial dominates."""
    signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
    pool = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t) and is_trained(t) and t.values is not None
    ]  # fmt: skip
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


def luck(study: optuna.Study, trial: FrozenTrial) -> dict[str, float | bool]:
    """How far the trial's edge and Sharpe stand above what picking the best of this study's
    trials would give by chance (see :mod:`xtune.search.luck`)."""
    return _luck(read(trial), Tried.of(study))


def _luck(r: TrialRecord, tried: Tried) -> dict[str, float | bool]:
    assert r.metrics is not None and r.plan is not None
    val, horizon = r.metrics.val, r.plan.data.labels.horizons[0]
    bar = edge_bar(tried.n, val.samples, val.baseline, r.plan.data.labels.max_horizon)
    sharpes = [_per_bar_sharpe(t) for t in tried.scored]
    dsr = deflated_sharpe(_per_bar_sharpe(r), sharpes, val.samples / horizon, tried.n)
    return {"trials": bar.trials, "noise": bar.noise, "expected_best_edge": bar.expected_best_edge,
            "edge_bar": bar.edge_bar, "lucky": bar.lucky(val.edge), "deflated_sharpe": dsr,
            "bars_per_year": _bars_per_year(r)}  # fmt: skip


def _row(
    t: FrozenTrial, names: list[str], created: StudyRecord | None, tried: Tried
) -> dict[str, Any]:
    r = read(t)
    assert r.metrics is not None and r.resources is not None and r.plan is not None
    assert r.data is not None
    return {
        "trial": t.number,
        **{name: value for name, value in zip(names, t.values, strict=True)},
        "baseline_accuracy": r.metrics.val.baseline,
        "edge": r.metrics.val.edge,
        "sharpe": r.metrics.val.sharpe,
        "validation": {k: getattr(r.metrics.val, k) for k in AVERAGED},
        "family": r.plan.params.model.family,
        "params": r.resources.params,
        "latency_ms": r.resources.latency_ms,
        "window": r.plan.data.window,
        "features": len(r.plan.data.features),
        "units": list(r.plan.units),
        "other_bars": other_bars(r.data, created),
        "label": r.label,
        "luck": _luck(r, tried),
        "parameters": dict(t.params),
    }


def summary(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    created, tried, front = read_study(study), Tried.of(study), pareto_front(study)
    return {
        "study": study.study_name,
        "objectives": names,
        "directions": [d.name.lower() for d in study.directions],
        "states": dict(states),
        "feasible": sum(1 for t in complete if is_feasible(t)),
        "infeasible": sum(1 for t in complete if is_over_cap(t)),
        "trained": sum(1 for t in complete if is_trained(t)),
        "diverged": sum(1 for t in complete if is_diverged(t)),
        "stopped": sum(1 for t in complete if is_stopped(t)),
        "budget_spent": round(spent(study), 3),
        "refused": sum(1 for t in trials if is_refused(t)),
        "failed": sum(1 for t in trials if is_failed(t)),
        "pareto_front": [_row(t, names, created, tried) for t in front],
        "seeded": _seeded(trials, names, {t.number for t in front}),
    }


def _seeded(trials: list[FrozenTrial], names: list[str], front: set[int]) -> list[dict[str, Any]]:
    """The trader's own setups (queued with a label): how each fared, on the front or not."""
    rows = []
    for t in trials:
        label = label_of(t)
        if label is None:
            continue
        status = status_of(t)
        row: dict[str, Any] = {"trial": t.number, "label": label, "state": t.state.name,
                               "status": status, "on_front": t.number in front}  # fmt: skip
        if is_trained(t) and t.values is not None and is_feasible(t):
            row |= dict(zip(names, t.values, strict=True))
        rows.append(row)
    return rows


def _importances(
    study: optuna.Study, index: int, trials: list[FrozenTrial]
) -> list[tuple[str, float, float]]:
    """(param, importance, sign) per numeric parameter; sign > 0 means larger values helped
    this objective (already flipped for minimized ones)."""
    if len(trials) < 4:
        return []
    direction = study.directions[index]
    # Only feasible trained trials (worst-value placeholders would distort everything), and
    # Optuna 5's default evaluator (PED-ANOVA) scores what makes the target LOW: negate
    # maximized objectives, or accuracy importances describe how to get bad accuracy.
    sub = optuna.create_study(directions=study.directions)
    sub.add_trials(trials)
    flip = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(
                sub, target=lambda t: flip * t.values[index]
            )
    except (RuntimeError, ValueError, ZeroDivisionError):
        return []
    goodness = np.array([t.values[index] for t in trials]) * (
        1 if direction == StudyDirection.MAXIMIZE else -1
    )
    out = []
    for name, value in imp.items():
        raw = [t.params.get(name) for t in trials]
        numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw)
        xs = np.array(raw, dtype=np.float64) if numeric else np.zeros(len(raw))
        sign = 0.0
        if numeric and xs.std() > 0 and goodness.std() > 0:
            # Spearman: the correlation of ranks
            ranks_x = np.argsort(np.argsort(xs)).astype(np.float64)
            ranks_g = np.argsort(np.argsort(goodness)).astype(np.float64)
            sign = float(np.sign(np.corrcoef(ranks_x, ranks_g)[0, 1]))
        out.append((name, float(value), sign))
    return out


class _Plots:
    """Writes each figure as PNG (matplotlib, no browser needed) and HTML (plotly)."""

    def __init__(self, out_dir: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.written = out_dir, list[Path]()

    def save(self, fig_mpl: Any, fig_go: Any, stem: str) -> None:
        import matplotlib.pyplot as plt

        png, html = self.out_dir / f"{stem}.png", self.out_dir / f"{stem}.html"
        fig_mpl.tight_layout()
        fig_mpl.savefig(png, dpi=90)
        plt.close(fig_mpl)
        fig_go.write_html(html, include_plotlyjs="cdn")
        self.written.extend([png, html])

    def bars(self, items: list[tuple[str, float]], title: str, stem: str) -> None:
        import matplotlib.pyplot as plt
        import plotly.graph_objects as go

        labels, values = [k for k, _ in items][::-1], [v for _, v in items][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(items) + 1.2))
        ax.barh(labels, values)
        ax.set_title(title)
        g = go.Figure(go.Bar(x=values, y=labels, orientation="h"))
        g.update_layout(title=title)
        self.save(fig, g, stem)


def _pareto_plot(plots: _Plots, names: list[str], groups: dict[str, list[FrozenTrial]]) -> None:
    """Objective 0 against objective 1: feasible, stopped, infeasible and front trials."""
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots(figsize=(6, 4))
    g = go.Figure()
    for (label, group), style in zip(groups.items(), "o.x*", strict=True):
        xs, ys = [t.values[0] for t in group], [t.values[1] for t in group]
        ax.scatter(
            xs, ys, marker=style, label=f"{label} ({len(group)})", s=60 if style == "*" else 25
        )
        g.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=label,
                               text=[f"trial {t.number}" for t in group]))  # fmt: skip
    title = "validation: feasible Pareto front"
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend()
    ax.set_title(title)
    g.update_layout(title=title, xaxis_title=names[0], yaxis_title=names[1])
    plots.save(fig, g, "pareto_front")


def _history_plot(plots: _Plots, names: list[str], trained: list[FrozenTrial]) -> None:
    """Each objective by trial number, feasible trained trials only, accuracy with its baseline."""
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    g = go.Figure()
    xs = [t.number for t in trained]
    for i, name in enumerate(names):
        ys = [t.values[i] for t in trained]
        axes[0][i].plot(xs, ys, "o", label=name)
        if name == "accuracy":
            axes[0][i].plot(
                xs, [_baseline(t) for t in trained], "_", color="grey", label="majority baseline"
            )
        axes[0][i].set_xlabel("trial")
        axes[0][i].set_title(name)
        axes[0][i].legend()
        g.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name))
    g.update_layout(title="history (feasible trials)", xaxis_title="trial")
    plots.save(fig, g, "history")


def write_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Pareto front (infeasible marked), importances per objective, history and feature usage,
    each as PNG and HTML."""
    plots = _Plots(out_dir)
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    complete = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values
    ]
    trained = [t for t in complete if is_feasible(t) and is_trained(t)]
    front = pareto_front(study)
    if len(names) >= 2:
        infeasible = [t for t in complete if not is_feasible(t)]
        stopped = [t for t in complete if is_stopped(t)]
        groups = {"feasible": trained, "stopped early (values at its rung)": stopped,
                  "infeasible (over a cap)": infeasible, "Pareto front": front}  # fmt: skip
        _pareto_plot(plots, names, groups)
    _history_plot(plots, names, trained)
    for i, name in enumerate(names):  # signed so that + means "larger helps"
        rows = _importances(study, i, trained)
        if rows:
            items = [(f"{p} ({'+' if s > 0 else '-' if s < 0 else '~'})", v) for p, v, s in rows]
            plots.bars(items, f"importance for {name} (+: larger values help, -: smaller help)",
                       f"importance_{name}")  # fmt: skip
    usage = Counter(u for t in front for u in _units(t))
    if usage:
        items = [(k, float(v)) for k, v in usage.most_common()]
        plots.bars(items, f"feature usage across {len(front)} Pareto trials", "feature_usage")
    return plots.written
