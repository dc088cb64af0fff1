"""The objective one trial runs: suggest -> cap check -> train -> record.

An infeasible trial (over the parameter or latency cap, or outside the feature-count bounds)
stops before training and is stored COMPLETE with worst-case values and its constraint values,
so the sampler learns where the cap is. A PRUNED trial would teach GPSampler and NSGA-II nothing.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from xtune.errors import XtuneError
from xtune.features.bars import Bars
from xtune.features.dataset import prepare
from xtune.models import build_model, count_params, cpu_latency_ms, train_and_evaluate
from xtune.models.train import Metrics, default_threads
from xtune.search.config import StudyConfig
from xtune.search.space import Plan, suggest

# What an infeasible or diverged trial reports, per objective.
WORST = {"accuracy": 0.0, "loss": 10.0, "sharpe": -10.0}


class CapError(XtuneError):
    """A trial (e.g. an enqueued one) asks for more than the hard caps allow."""


def constraints(
    config: StudyConfig, plan: Plan, n_params: int, latency_ms: float
) -> dict[str, float]:
    """Relative violations (> 0 violates), the same keys on every trial."""
    caps, f = config.caps, config.features
    n_units = len(plan.units)
    return {
        "params": n_params / caps.max_params - 1.0,
        "latency_ms": latency_ms / caps.max_latency_ms - 1.0,
        "features_min": float(f.min - n_units),
        "features_max": float(n_units - f.max),
    }


def check_hard_caps(config: StudyConfig, plan: Plan) -> None:
    """Hidden size and depth are hard bounds: refuse a plan beyond them (enqueued trials)."""
    m, caps = plan.params.model, config.caps
    width = m.hidden if m.family == "lstm" else m.embed
    depth = m.layers if m.family == "lstm" else m.blocks
    if width > caps.max_hidden or depth > caps.max_layers:
        raise CapError(
            f"trial asks for {m.family} width {width} and depth {depth}, beyond the caps "
            f"max_hidden={caps.max_hidden}, max_layers={caps.max_layers}; it is refused."
        )


def enqueue(study: optuna.Study, config: StudyConfig, params: dict[str, Any]) -> None:
    """Queue a hand-picked trial, refusing one beyond the hard caps before it is stored."""
    caps = config.caps
    width = params.get("lstm/hidden", params.get("xlstm/embed", 0))
    depth = params.get("lstm/layers", params.get("xlstm/blocks", 0))
    if width > caps.max_hidden or depth > caps.max_layers:
        raise CapError(
            f"enqueued trial asks for width {width} and depth {depth}, beyond the caps "
            f"max_hidden={caps.max_hidden}, max_layers={caps.max_layers}; it is refused."
        )
    study.enqueue_trial(params, skip_if_exists=True)


def record_metrics(trial: optuna.Trial, metrics: Metrics) -> None:
    attrs: dict[str, Any] = {
        "metrics/val_accuracy": metrics.val_accuracy,
        "metrics/val_loss": metrics.val_loss if math.isfinite(metrics.val_loss) else None,
        "metrics/baseline_accuracy": metrics.baseline_accuracy,
        "metrics/edge": metrics.edge,
        "metrics/val_sharpe": metrics.val_sharpe,
        "metrics/val_accuracy_per_horizon": list(metrics.val_accuracy_per_horizon),
        "train/epochs_run": metrics.epochs_run,
        "train/best_epoch": metrics.best_epoch,
        "train/seconds": metrics.train_seconds,
        "train/status": metrics.status,
        "train/stopped": metrics.stopped,
        "train/curve": [[r.epoch, r.train_loss, r.val_loss, r.val_accuracy] for r in metrics.curve],
    }
    if metrics.reason:
        attrs["train/reason"] = metrics.reason
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def learning_curve_png(metrics: Metrics, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    epochs = [r.epoch for r in metrics.curve]
    ax1.plot(epochs, [r.train_loss for r in metrics.curve], label="train loss")
    ax1.plot(epochs, [r.val_loss for r in metrics.curve], label="val log loss")
    ax1.set_xlabel("epoch")
    ax1.legend()
    ax2.plot(epochs, [r.val_accuracy for r in metrics.curve], label="val accuracy")
    ax2.axhline(metrics.baseline_accuracy, color="grey", linestyle="--", label="majority baseline")
    ax2.set_xlabel("epoch")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


class Objective:
    """Callable for ``study.optimize``. Holds the bars and the candidate features, built once."""

    def __init__(
        self,
        config: StudyConfig,
        bars: Bars,
        candidates: pd.DataFrame,
        *,
        device: str = "cpu",
        artifact_store: Any = None,
    ) -> None:
        self.config, self.bars, self.candidates = config, bars, candidates
        self.device, self.artifact_store = device, artifact_store

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        config = self.config
        trial.set_user_attr("worker/host", socket.gethostname())
        trial.set_user_attr("worker/pid", os.getpid())
        plan = suggest(trial, config)
        try:
            check_hard_caps(config, plan)
        except CapError as exc:  # queued by other means: FAIL with the reason, worker goes on
            trial.set_user_attr("train/status", "refused")
            trial.set_user_attr("train/reason", str(exc))
            raise
        trial.set_user_attr("plan/json", plan.to_json())
        trial.set_user_attr("features/list", list(plan.data.features))
        trial.set_user_attr("features/units", list(plan.units))
        trial.set_user_attr("data/sha256", self.bars.sha256)
        trial.set_user_attr("data/source", self.bars.source)
        trial.set_user_attr("data/rows", len(self.bars))
        # All trials share the rows after the widest candidate warm-up; replay starts there too.
        trial.set_user_attr("data/first_row", len(self.bars) - len(self.candidates))
        trial.set_user_attr("data/span", f"{self.bars.index[0]} .. {self.bars.index[-1]}")
        trial.set_user_attr("seed", plan.params.train.seed)

        model = build_model(plan.params.model)
        n_params = count_params(model)
        latency = cpu_latency_ms(model, plan.data.window, len(plan.data.features))
        trial.set_user_attr("resources/params", n_params)
        trial.set_user_attr("resources/latency_ms", latency)
        violations = constraints(config, plan, n_params, latency)
        for key, value in violations.items():
            trial.set_constraint(key, value)
        feasible = all(v <= 0 for v in violations.values())
        # optuna-dashboard 0.21 ignores constraints when it marks best trials: say it in an attr.
        trial.set_user_attr("feasible", feasible)
        if not feasible:
            over = [k for k, v in violations.items() if v > 0]
            trial.set_user_attr("train/status", "infeasible")
            trial.set_user_attr("train/reason", f"over the cap: {', '.join(over)}; not trained")
            return self.worst()

        trial.set_user_attr("train/threads", plan.params.train.threads or default_threads())
        data = prepare(self.bars, plan.data, features=self.candidates)
        metrics = train_and_evaluate(plan.params, data, device=self.device, fee=config.trading.fee)
        record_metrics(trial, metrics)
        if metrics.status != "ok":
            return self.worst()
        self.upload_curve(trial, metrics)
        values = {
            "accuracy": metrics.val_accuracy,
            "loss": metrics.val_loss,
            "sharpe": metrics.val_sharpe,
        }
        return tuple(values[o] for o in config.study.objectives)

    def worst(self) -> tuple[float, ...]:
        return tuple(WORST[o] for o in self.config.study.objectives)

    def upload_curve(self, trial: optuna.Trial, metrics: Metrics) -> None:
        if self.artifact_store is None:
            return
        from optuna.artifacts import upload_artifact

        with tempfile.TemporaryDirectory() as tmp:
            title = f"trial {trial.number}: val acc {metrics.val_accuracy:.3f} (baseline {metrics.baseline_accuracy:.3f})"
            png = learning_curve_png(
                metrics, Path(tmp) / f"learning_curve_{trial.number}.png", title
            )
            upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(png),
                study_or_trial=trial,
                mimetype="image/png",
            )
