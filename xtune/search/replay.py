"""Retrain a stored trial from its record alone and compare the metrics (``xtune replay``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import optuna

from xtune.errors import XtuneError
from xtune.features import (
    Bars,
    Dataset,
    DataSpec,
    LabelSpec,
    SplitSpec,
    build_features,
    load_bars,
    prepare,
)
from xtune.models import (
    HeadConfig,
    LossConfig,
    LSTMConfig,
    Metrics,
    Params,
    TrainConfig,
    XLSTMConfig,
)
from xtune.models.train import train_and_evaluate
from xtune.search.space import Plan


def plan_from_json(text: str) -> Plan:
    """Inverse of :meth:`Plan.to_json`: every config rebuilt as its frozen dataclass."""
    raw = json.loads(text)
    d = raw["data"]
    data = DataSpec(
        features=tuple(d["features"]),
        window=d["window"],
        labels=LabelSpec(
            tuple(d["labels"]["horizons"]), d["labels"]["dead_zone"], d["labels"]["classes"]
        ),
        split=SplitSpec(**d["split"]),
        clip=d["clip"],
    )
    m = dict(raw["params"]["model"])
    m["head"] = HeadConfig(**m["head"])
    model: LSTMConfig | XLSTMConfig
    if m["family"] == "lstm":
        model = LSTMConfig(**m)
    else:
        m["slstm_at"] = tuple(m["slstm_at"])
        model = XLSTMConfig(**m)
    t = dict(raw["params"]["train"])
    t["loss"] = LossConfig(**t["loss"])
    return Plan(data, Params(model, TrainConfig(**t)), tuple(raw["units"]))


def trial_inputs(attrs: dict[str, Any], bars: Bars) -> tuple[Plan, Params, Dataset]:
    """A trial's plan, training settings and dataset, rebuilt from its record (replay, export).

    On the bars it was searched on, the dataset starts at the same row as in the search (after
    the widest candidate feature's warm-up), so the splits are the same. The training thread
    count is the recorded one, because float results depend on it.
    """
    plan = plan_from_json(attrs["plan/json"])
    frame = build_features(bars, plan.data.features)
    same = bars.sha256 == attrs["data/sha256"]
    skip = int(attrs["data/first_row"]) - (len(bars) - len(frame)) if same else 0
    dataset = prepare(bars, plan.data, features=frame.iloc[skip:])
    train = plan.params.train
    if attrs.get("train/threads"):
        train = replace(train, threads=int(attrs["train/threads"]))
    return plan, Params(plan.params.model, train), dataset


@dataclass(frozen=True)
class ReplayResult:
    trial: int
    stored: dict[str, float]
    replayed: Metrics

    @property
    def max_difference(self) -> float:
        again = {"val_accuracy": self.replayed.val_accuracy, "val_loss": self.replayed.val_loss,
                 "baseline_accuracy": self.replayed.baseline_accuracy}  # fmt: skip
        return max(abs(self.stored[k] - again[k]) for k in self.stored)


def replay(
    study: optuna.Study, number: int, *, data: str | None = None, fee: float = 0.0
) -> ReplayResult:
    """Retrain trial ``number`` on CPU from its stored plan and data record."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials:
        raise XtuneError(f"study '{study.study_name}' has no trial {number}.")
    trial = trials[0]
    attrs: dict[str, Any] = trial.user_attrs
    if attrs.get("train/status") != "ok":
        raise XtuneError(
            f"trial {number} was not trained ({attrs.get('train/status', trial.state.name)}: "
            f"{attrs.get('train/reason', 'no result')}); nothing to replay."
        )
    bars = load_bars(data or attrs["data/source"])
    if bars.sha256 != attrs["data/sha256"]:
        raise XtuneError(
            f"{bars.source}: these bars differ from the ones trial {number} trained on "
            f"(sha256 {bars.sha256[:12]} vs {attrs['data/sha256'][:12]}). Pass --data with the original file."
        )
    params, dataset = trial_inputs(attrs, bars)[1:]
    metrics = train_and_evaluate(params, dataset, device="cpu", fee=fee)
    stored = {
        "val_accuracy": float(attrs["metrics/val_accuracy"]),
        "val_loss": float(attrs["metrics/val_loss"]),
        "baseline_accuracy": float(attrs["metrics/baseline_accuracy"]),
    }
    return ReplayResult(number, stored, metrics)
