"""The objective one trial runs: suggest -> cap check -> train -> record.

An infeasible trial (over the parameter or latency cap, or outside the feature-count bounds)
stops before training with its constraint values, so the sampler learns where the cap is; it
is stored PRUNED or COMPLETE with worst-case values, by what the sampler reads
(:func:`~xtune.search.states.over_cap_state`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from xtune.errors import CapError, TrialFault
from xtune.features.bars import Bars
from xtune.features.dataset import prepare
from xtune.models import (
    Initial,
    Metrics,
    Resources,
    Stopped,
    initialize,
    probe,
    train_and_evaluate,
    width_depth,
)
from xtune.models._train import default_threads
from xtune.models.results import TrainLog
from xtune.search.config import StudyConfig
from xtune.search.device import DeviceRecord
from xtune.search.pruning import Pruner, share_done
from xtune.search.record import (
    DataRecord,
    Plan,
    PluginRecord,
    TrialRecord,
    Worker,
    write,
)
from xtune.search.space import suggest
from xtune.search.states import is_trained, over_cap_state

# What a diverged trial reports, per objective, and an infeasible one where it is COMPLETE.
WORST = {
    "accuracy": 0.0,
    "loss": 10.0,
    "sharpe": -10.0,
    "edge": -1.0,
    "balanced_accuracy": 0.0,
    "confident_accuracy": 0.0,
    "max_drawdown": 1.0,
    "calmar": -100.0,
}


def _describe(exc: Exception) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first[:300]}"


def _release(device: str) -> None:
    """Hand what a failed trial held back to the device, once its traceback (whose frames
    hold the trial's tensors) is gone, so that it cannot starve the next trial."""
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def constraints(config: StudyConfig, plan: Plan, resources: Resources) -> dict[str, float]:
    """Relative violations (> 0 violates), the same keys on every trial."""
    caps, f = config.caps, config.features
    n_units = len(plan.units)
    return {
        "params": resources.params / caps.max_params - 1.0,
        "latency_ms": resources.latency_ms * caps.latency_scale / caps.max_latency_ms - 1.0,
        "features_min": float(f.min - n_units),
        "features_max": float(n_units - f.max),
    }


def check_hard_caps(config: StudyConfig, plan: Plan) -> None:
    """Hidden size and depth are hard bounds: refuse a plan beyond them. :func:`suggest` never
    draws one (the space is cut to the caps) and :func:`~xtune.search.seeds.enqueue` refuses
    such a setup before it is stored, naming the key; this guards trials queued by other
    means (Optuna's own ``enqueue_trial``, a retry from before the caps were lowered)."""
    m, caps = plan.params.model, config.caps
    width, depth = width_depth(m)
    if width > caps.max_width or depth > caps.max_depth:
        raise CapError(
            f"trial asks for {m.family} width {width} and depth {depth}, beyond the caps "
            f"max_width={caps.max_width}, max_depth={caps.max_depth}; it is refused."
        )


def learning_curve_png(metrics: Metrics, path: Path, title: str) -> Path:
    """The trial's learning curve for the dashboard. A bare Agg ``Figure`` with a fixed layout:
    pyplot's global state and ``tight_layout`` (a second draw) doubled a worker's cost per
    trial (bench/overhead.py)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3))
    ax1, ax2 = fig.subplots(1, 2)
    curve = metrics.log.curve
    epochs = [r.epoch for r in curve]
    ax1.plot(epochs, [r.train_loss for r in curve], label="train loss")
    ax1.plot(epochs, [r.val_loss for r in curve], label="val log loss")
    ax1.set_xlabel("epoch")
    ax1.legend()
    ax2.plot(epochs, [r.val_accuracy for r in curve], label="val accuracy")
    ax2.axhline(metrics.val.baseline, color="grey", linestyle="--", label="majority baseline")
    ax2.set_xlabel("epoch")
    ax2.legend()
    fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.86, wspace=0.25)
    fig.savefig(path, dpi=80)
    return path


class Objective:
    """Callable for ``study.optimize``. Holds the bars and the candidate features, built once."""

    def __init__(
        self,
        config: StudyConfig,
        bars: Bars,
        candidates: pd.DataFrame,
        *,
        device: DeviceRecord,
        seed: int,
        artifact_store: Any = None,
        plugins: tuple[PluginRecord, ...] = (),
    ) -> None:
        self.config, self.bars, self.candidates = config, bars, candidates
        self.plugins = plugins  # the study's plugin files, hashed where the features were built
        self.device, self.artifact_store = device, artifact_store
        self.data, self.worker = DataRecord.of(bars), Worker.here(seed)  # built in the worker
        # Every trial starts at the widest candidate's warm-up, so all split the same rows.
        self.first_row = len(bars) - len(candidates)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        config = self.config
        write(trial, TrialRecord(status="running", worker=self.worker, device=self.device))
        plan = suggest(
            trial, config, first_row=self.first_row, bf16=self.device.precision == "bf16"
        )
        try:
            check_hard_caps(config, plan)
        except CapError as exc:  # queued by other means: FAIL with the reason, worker goes on
            write(trial, TrialRecord(status="refused", reason=str(exc)))
            raise
        init = initialize(plan.params)  # built and probed once; every fold starts from it
        resources = probe(init.model, plan.data.window, len(plan.data.features))
        violations = constraints(config, plan, resources)
        for key, value in violations.items():
            trial.set_constraint(key, value)
        # optuna-dashboard 0.21 ignores constraints when it marks best trials: say it in an attr.
        feasible = all(v <= 0 for v in violations.values())
        used = tuple(p for p in self.plugins if set(p.features) & set(plan.data.features))
        record = TrialRecord(
            plan=plan, data=self.data, resources=resources, feasible=feasible, plugins=used
        )
        if not feasible:
            over = ", ".join(k for k, v in violations.items() if v > 0)
            reason = f"over the cap: {over}; not trained"
            write(trial, replace(record, status="infeasible", reason=reason))
            if over_cap_state(config.study.sampler) == optuna.trial.TrialState.PRUNED:
                raise optuna.TrialPruned(reason)
            return self.worst()
        threads = plan.params.train.threads or default_threads()
        write(trial, replace(record, threads=threads))
        started = time.perf_counter()
        try:
            metrics = self.train(trial, plan, init)
        except Stopped as stop:  # early stopping: the values at its rung, never on the front
            return self.stopped(trial, plan, stop, time.perf_counter() - started)
        write(trial, TrialRecord(status=metrics.status, reason=metrics.log.reason, metrics=metrics))
        if metrics.status != "ok":
            return self.worst()
        self.upload_curve(trial, metrics)
        return metrics.val.values(config.study.objectives)

    def train(self, trial: optuna.Trial, plan: Plan, init: Initial) -> Metrics:
        """Train and score on every fold, judged at rungs when early stopping is on.

        Raises:
            Stopped: early stopping ended the trial at a rung.
            TrialFault: training raised (out of memory, ...); recorded on the trial.
        """
        config = self.config
        pruner = Pruner(trial, config.study.objectives, config.signs)
        rungs = pruner.rungs(plan.params.train.epochs) if config.search.early_stop else None
        try:
            feature_set = config.features.feature_set
            data = prepare(self.bars, plan.data, feature_set=feature_set, features=self.candidates)
            return train_and_evaluate(
                plan.params,
                data,
                device=self.device.device,
                fee=config.trading.fee,
                init=init,
                confident_share=config.trading.confident_share,
                rungs=rungs,
            )
        except Stopped:
            raise
        except Exception as exc:  # never KeyboardInterrupt: Ctrl-C still stops the worker
            logging.getLogger("xtune").warning(
                "trial %d: training raised", trial.number, exc_info=exc
            )
            reason = _describe(exc)
        _release(self.device.device)  # here, after the except: `exc` and its frames are gone
        write(trial, TrialRecord(status="failed", reason=reason))
        raise TrialFault(reason)

    def stopped(
        self, trial: optuna.Trial, plan: Plan, stop: Stopped, seconds: float
    ) -> tuple[float, ...]:
        """Store a trial early stopping ended: its values at the rung, and what it cost (its
        time so far against the trained trials' whole time, each from Optuna's own stamps)."""
        trained = [
            t.duration.total_seconds()
            for t in trial.study.get_trials(deepcopy=False)
            if is_trained(t) and t.duration is not None
        ]
        assert trial.datetime_start is not None
        elapsed = (datetime.now() - trial.datetime_start).total_seconds()
        share = share_done(
            stop.rung, plan.params.train.epochs, plan.data.split.folds, elapsed, trained
        )
        log = TrainLog((), 0, 0, seconds, stop.reason)
        write(
            trial,
            TrialRecord(
                status="stopped", reason=stop.reason, share=share, metrics=Metrics(stop.scores, log)
            ),
        )
        return stop.scores.values(self.config.study.objectives)

    def worst(self) -> tuple[float, ...]:
        return tuple(WORST[o] for o in self.config.study.objectives)

    def upload_curve(self, trial: optuna.Trial, metrics: Metrics) -> None:
        if self.artifact_store is None:
            return
        from optuna.artifacts import upload_artifact

        with tempfile.TemporaryDirectory() as tmp:
            title = f"trial {trial.number}: val acc {metrics.val.accuracy:.3f} (baseline {metrics.val.baseline:.3f})"
            png = learning_curve_png(
                metrics, Path(tmp) / f"learning_curve_{trial.number}.png", title
            )
            upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(png),
                study_or_trial=trial,
                mimetype="image/png",
            )
