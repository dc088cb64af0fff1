"""``suggest(trial, config) -> Plan``: the search space, apart from training, so a trial's plan
can be rebuilt from its stored parameters without Optuna (``xtune replay``)."""

from __future__ import annotations

from typing import Any, Protocol

from xtune.features.dataset import DataSpec
from xtune.models import HeadConfig, LossConfig, LSTMConfig, Params, TrainConfig, XLSTMConfig
from xtune.search.config import StudyConfig
from xtune.search.ranges import Choice, Fixed, FloatRange, IntRange, Space
from xtune.search.record import Plan


class Suggester(Protocol):
    """What ``suggest`` needs from a trial: ``optuna.Trial`` or a replay of stored params."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def _pick(trial: Suggester, name: str, space: Space, cap: int | float | None = None) -> Any:
    if isinstance(space, Fixed):
        return space.value
    if isinstance(space, Choice):
        options = [o for o in space.options if cap is None or o <= cap]
        return trial.suggest_categorical(name, options)
    if isinstance(space, IntRange):
        high = space.high if cap is None else min(space.high, int(cap))
        high = space.low + (high - space.low) // space.step * space.step  # stay on the step grid
        return trial.suggest_int(name, space.low, high, step=space.step)
    assert isinstance(space, FloatRange)
    return trial.suggest_float(name, space.low, space.high, log=space.log)


def _model(trial: Suggester, config: StudyConfig, n_features: int) -> LSTMConfig | XLSTMConfig:
    """Family, dropout and architecture, in this order (the order of the draws is part of a
    seeded study's history)."""
    caps = config.caps
    head = HeadConfig(len(config.labels.horizons), config.labels.classes)
    family = trial.suggest_categorical("family", list(config.model.families))
    dropout = float(_pick(trial, "dropout", config.train.dropout))
    if family == "lstm":
        s = config.model.lstm
        return LSTMConfig(
            n_features=n_features,
            hidden=_pick(trial, "lstm/hidden", s.hidden, caps.max_hidden),
            layers=_pick(trial, "lstm/layers", s.layers, caps.max_layers),
            dropout=dropout,
            head=head,
        )
    s2 = config.model.xlstm
    blocks = _pick(trial, "xlstm/blocks", s2.blocks, caps.max_layers)
    slstm_at = tuple(
        i for i in range(blocks) if trial.suggest_categorical(f"xlstm/slstm_{i}", [False, True])
    )
    return XLSTMConfig(
        n_features=n_features,
        embed=_pick(trial, "xlstm/embed", s2.embed, caps.max_hidden),
        heads=_pick(trial, "xlstm/heads", s2.heads),
        blocks=blocks,
        slstm_at=slstm_at,
        dropout=dropout,
        head=head,
    )


def _train(trial: Suggester, config: StudyConfig, bf16: bool) -> TrainConfig:
    t = config.train
    return TrainConfig(
        epochs=t.epochs,
        patience=t.patience,
        max_seconds=t.max_seconds or None,
        batch_size=int(_pick(trial, "batch_size", t.batch_size)),
        lr=float(_pick(trial, "lr", t.lr)),
        weight_decay=float(_pick(trial, "weight_decay", t.weight_decay)),
        schedule=t.schedule,  # type: ignore[arg-type]
        seed=config.study.seed,
        bf16=bf16,
        loss=LossConfig(
            label_smoothing=float(_pick(trial, "label_smoothing", t.label_smoothing)),
            focal_gamma=float(_pick(trial, "focal_gamma", t.focal_gamma)),
            return_weight=float(_pick(trial, "return_weight", t.return_weight)),
        ),
    )


def suggest(
    trial: Suggester, config: StudyConfig, *, first_row: int = 0, bf16: bool = True
) -> Plan:
    """Draw one configuration. Hidden size and layers never exceed the caps: the space is cut
    to them, so only parameters and latency can make a trial infeasible. ``first_row`` is the
    first bar the trial's data may use (see :class:`~xtune.features.DataSpec`); ``bf16`` is
    the precision the worker's device check settled on."""
    f = config.features
    units = tuple(u for u in f.units if trial.suggest_categorical(f"use/{u}", [True, False]))
    names = tuple(n for n in f.candidates if any(n in f.features_of(u) for u in units))
    window = _pick(trial, "window", config.data.window)
    data = DataSpec(features=names or f.candidates[:1], window=window, labels=config.labels,
                    split=config.split, first_row=first_row)  # fmt: skip
    model = _model(trial, config, len(data.features))
    return Plan(data, Params(model, _train(trial, config, bf16)), units)


class Replay:
    """A stand-in trial that answers every suggest_* from stored parameters."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise KeyError(
                f"the stored trial has no parameter {name!r}; was the study file changed?"
            )
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int:
        return int(self._get(name))

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return float(self._get(name))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._get(name)
