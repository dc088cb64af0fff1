"""What the search benchmarks share: a cheap bench study on synthetic momentum bars, the
feasible front's hypervolume, and its trajectory over wall time."""

from __future__ import annotations

import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from xtune.features.sample import synthetic_bars
from xtune.search import StudyConfig, is_feasible, load_study_config
from xtune.search.record import status_of

REFERENCE = (0.5, 0.70)  # (accuracy, loss): a point any useful model beats on both

# Small enough for hundreds of trials on a 2-core CPU, with the quickstart's dimensions:
# both families, feature groups, window and training settings, a resource cap.
STUDY = """
[study]
name = "bench"
trials = {trials}
seed = {seed}
sampler = "{sampler}"
objectives = ["accuracy", "loss"]

[data]
source = "{source}"
window = [16, 32]
window_step = 16

[labels]
horizons = [1]
classes = 2

[split]
val = 0.2
test = 0.15
folds = {folds}

[features]
groups = ["returns", "momentum", "volatility", "volume"]
unit = "group"

[model]
families = {families}

[model.lstm]
hidden = [8, 32]
layers = [1, 2]

[model.xlstm]
embed = [16, 32]
heads = {{choices = [2, 4]}}
blocks = [1, 2]

[train]
epochs = {epochs}
patience = 3
batch_size = 256
lr = [1e-3, 2e-2]
weight_decay = [1e-4, 1e-1]
dropout = [0.0, 0.2]
return_weight = [0.0, 0.5]

[caps]
max_width = 48
max_depth = 2
max_params = 20000
max_latency_ms = 5.0

[search]
early_stop = {early_stop}
"""


def bench_study(
    folder: Path, *, sampler: str = "tpe", seed: int = 0, trials: int = 60, bars: int = 3000,
    epochs: int = 6, folds: int = 1, early_stop: bool = False, families: str = '["lstm"]',
    momentum: float = 0.15,
) -> StudyConfig:  # fmt: skip
    """Write the synthetic bars (once) and a bench study file into ``folder``; load it."""
    source = folder / f"synthetic_{bars}_{momentum:g}.csv"
    if not source.exists():
        synthetic_bars(bars, momentum=momentum).to_csv(source)
    text = STUDY.format(trials=trials, seed=seed, sampler=sampler, source=source.name,
                        folds=folds, families=families, epochs=epochs,
                        early_stop=str(early_stop).lower())  # fmt: skip
    path = folder / f"bench_{sampler}_{seed}_{early_stop}.toml"
    path.write_text(text)
    return load_study_config(path)


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by (accuracy up, loss down) points and bounded by REFERENCE: sweep the
    points by falling accuracy; each strip down to the next accuracy is covered from the
    lowest loss seen so far up to the reference loss."""
    kept = sorted(
        (p for p in points if p[0] > REFERENCE[0] and p[1] < REFERENCE[1]), key=lambda p: -p[0]
    )
    area, best_loss = 0.0, REFERENCE[1]
    for i, (acc, loss) in enumerate(kept):
        best_loss = min(best_loss, loss)
        next_acc = kept[i + 1][0] if i + 1 < len(kept) else REFERENCE[0]
        area += (acc - next_acc) * (REFERENCE[1] - best_loss)
    return area


def _feasible_ok(t: optuna.trial.FrozenTrial) -> bool:
    """Trained to the end, within every cap: what the front is made of (never a stopped one)."""
    return status_of(t) == "ok" and is_feasible(t) and t.values is not None


def trajectory(study: optuna.Study, clock: CpuClock | None = None) -> list[tuple[float, float]]:
    """(seconds, feasible front hypervolume) after each finished trial, in completion order.
    Seconds are wall time since the first trial started, or, with ``clock``, CPU seconds of
    the run's process since the run began, which other load on the machine does not inflate."""
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.datetime_complete),
                    key=lambda t: t.datetime_complete)  # type: ignore[arg-type,return-value]  # fmt: skip
    assert trials, "no finished trial"
    if clock is not None:
        seconds = [clock.at(t.datetime_complete) for t in trials]  # type: ignore[arg-type]
    else:
        start = min(t.datetime_start for t in trials if t.datetime_start is not None)
        seconds = [(t.datetime_complete - start).total_seconds() for t in trials]  # type: ignore[operator]
    points: list[tuple[float, float]] = []
    out = []
    for t, s in zip(trials, seconds, strict=True):
        if t.state == TrialState.COMPLETE and _feasible_ok(t):
            points.append((t.values[0], t.values[1]))
        out.append((s, hypervolume(points)))
    return out


class CpuClock:
    """An ``on_progress`` callback for ``run_search`` (called before the first trial and after
    each finished one): notes this process's CPU time and the wall clock at each call."""

    def __init__(self) -> None:
        self.ticks: list[tuple[datetime, float]] = []

    def __call__(self, *_: object) -> None:
        self.ticks.append((datetime.now(), time.process_time()))

    def at(self, moment: datetime) -> float:
        """CPU seconds since the first call, at the first call at or after ``moment``."""
        cpu = next(c for wall, c in self.ticks if wall >= moment)
        return cpu - self.ticks[0][1]


def pin(counter: Any) -> None:
    """A pool initializer giving each process a core of its own: tiny models train fastest
    on one thread, and two runs at once do not slow each other."""
    with counter.get_lock():
        core, counter.value = counter.value, counter.value + 1
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[core % len(cores)]})
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float:
    """The first time the curve's hypervolume reaches ``target`` (inf: never)."""
    return next((s for s, hv in curve if hv >= target - 1e-12), math.inf)


def hv_at(curve: list[tuple[float, float]], seconds: float) -> float:
    """The hypervolume reached by ``seconds`` (0 before the first trial finished)."""
    return max((hv for s, hv in curve if s <= seconds), default=0.0)


def mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0
