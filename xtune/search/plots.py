"""The report's figures, each as PNG (matplotlib, no browser needed) and HTML (plotly): the
Pareto front, each objective's history, signed parameter importances and feature usage.

Only measured values are drawn: feasible trained trials, and stopped trials (marked) at the
values of the rung where early stopping ended them. A trial over a cap was never trained and
a diverged one has no real scores; their stored values are placeholders, so the figures leave
them out and say how many.
"""

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
from optuna.trial import FrozenTrial

from xtune.search.record import read
from xtune.search.report import is_feasible, objective_names, pareto_front
from xtune.search.states import is_diverged, is_over_cap, is_stopped, is_trained


@dataclass(frozen=True)
class Drawn:
    """Which trials the figures draw at their values, and how many they leave out."""

    trained: list[FrozenTrial]  # feasible and trained: real validation values
    stopped: list[FrozenTrial]  # the values of the rung where early stopping ended them
    front: list[FrozenTrial]
    over_cap: int  # never trained: no values, or placeholders in an older study
    diverged: int  # placeholder values

    @classmethod
    def of(cls, study: optuna.Study) -> Drawn:
        trials = study.get_trials(deepcopy=False)
        trained = [t for t in trials if is_trained(t) and is_feasible(t) and t.values]
        stopped = [t for t in trials if is_stopped(t) and t.values]
        over, diverged = sum(map(is_over_cap, trials)), sum(map(is_diverged, trials))
        return cls(trained, stopped, pareto_front(study), over, diverged)

    def left_out(self) -> str:
        """What is not drawn, for a figure's title ("" when nothing is left out)."""
        parts = [f"{self.over_cap} over a cap (never trained)"] if self.over_cap else []
        parts += [f"{self.diverged} diverged (no scores)"] if self.diverged else []
        return f"not drawn: {', '.join(parts)}" if parts else ""


def _baseline(trial: FrozenTrial) -> float:
    metrics = read(trial).metrics
    return math.nan if metrics is None else metrics.val.baseline


def _units(trial: FrozenTrial) -> tuple[str, ...]:
    plan = read(trial).plan
    return () if plan is None else plan.units


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


def pareto_figures(names: list[str], drawn: Drawn) -> tuple[Any, Any]:
    """Objective 0 against objective 1 (matplotlib and plotly figures): trained trials, stopped
    ones marked, the front starred; what is left out named in the title."""
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    groups = {
        "trained": drawn.trained,
        "stopped early (values at its rung)": drawn.stopped,
        "Pareto front": drawn.front,
    }
    fig, ax = plt.subplots(figsize=(6, 4))
    g = go.Figure()
    for (label, group), style in zip(groups.items(), "o.*", strict=True):
        xs, ys = [t.values[0] for t in group], [t.values[1] for t in group]
        ax.scatter(
            xs, ys, marker=style, label=f"{label} ({len(group)})", s=60 if style == "*" else 25
        )
        g.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="markers", name=label, text=[f"trial {t.number}" for t in group]
            )
        )
    title = "validation: feasible Pareto front"
    if drawn.left_out():
        title += f"\n{drawn.left_out()}"
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend()
    ax.set_title(title, fontsize=10)
    g.update_layout(title=title.replace("\n", "<br>"), xaxis_title=names[0], yaxis_title=names[1])
    return fig, g


def _history_plot(plots: _Plots, names: list[str], drawn: Drawn) -> None:
    """Each objective by trial number, feasible trained trials only, accuracy with its baseline."""
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    trained = drawn.trained
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
    g.update_layout(title="history (feasible trained trials)", xaxis_title="trial")
    plots.save(fig, g, "history")


def write_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Pareto front (stopped trials marked; over-cap and diverged ones left out and counted),
    importances per objective, history and feature usage, each as PNG and HTML."""
    plots = _Plots(out_dir)
    names = objective_names(study)
    drawn = Drawn.of(study)
    if len(names) >= 2:
        plots.save(*pareto_figures(names, drawn), "pareto_front")
    _history_plot(plots, names, drawn)
    for i, name in enumerate(names):  # signed so that + means "larger helps"
        rows = _importances(study, i, drawn.trained)
        if rows:
            items = [(f"{p} ({'+' if s > 0 else '-' if s < 0 else '~'})", v) for p, v, s in rows]
            plots.bars(
                items,
                f"importance for {name} (+: larger values help, -: smaller help)",
                f"importance_{name}",
            )
    usage = Counter(u for t in drawn.front for u in _units(t))
    if usage:
        items = [(k, float(v)) for k, v in usage.most_common()]
        plots.bars(items, f"feature usage across {len(drawn.front)} Pareto trials", "feature_usage")
    return plots.written
