"""``suggest(trial, config) -> Plan``: the search space, apart from training, so a trial's plan
can be rebuilt from its stored parameters without Optuna (``xtune replay``).

This module is the one place that names the study's parameters (``family``, ``lstm/hidden``,
``use/<unit>``, ...): :func:`parameter_space` lists them by asking :func:`suggest` itself, and
:func:`feature_params` inverts its feature draws for a trader's own setups (``[[enqueue]]``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any, Protocol

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from xtune.features.dataset import DataSpec
from xtune.models import HeadConfig, LossConfig, ModelConfig, Params, TrainConfig
from xtune.models.families import FAMILIES, Cap
from xtune.search.config import CapsSection, FeatureSection, StudyConfig
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


class _Draws:
    """:class:`~xtune.models.families.Draws` for one trial under the study's caps."""

    def __init__(self, trial: Suggester, caps: CapsSection) -> None:
        self.trial, self.caps = trial, caps

    def pick(self, name: str, space: Space, cap: Cap | None = None) -> Any:
        limit = {"width": self.caps.max_width, "depth": self.caps.max_depth, None: None}[cap]
        return _pick(self.trial, name, space, limit)

    def flag(self, name: str) -> bool:
        return bool(self.trial.suggest_categorical(name, [False, True]))


def _model(trial: Suggester, config: StudyConfig, n_features: int) -> ModelConfig:
    """Family, dropout and architecture, in this order (the order of the draws is part of a
    seeded study's history)."""
    head = HeadConfig(len(config.labels.horizons), config.labels.classes)
    family = FAMILIES[trial.suggest_categorical("family", list(config.model.families))]
    dropout = float(_pick(trial, "dropout", config.train.dropout))
    space = config.model.space(family.name)
    model: ModelConfig = family.suggest(
        _Draws(trial, config.caps), space, n_features, head, dropout
    )
    return model


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
    """Draw one configuration. A model's width and depth never exceed the caps: the space is cut
    to them, so only parameters and latency can make a trial infeasible. ``first_row`` is the
    first bar the trial's data may use (see :class:`~xtune.features.DataSpec`); ``bf16`` is
    the precision the worker's device check settled on."""
    f = config.features
    units = _counted_units(trial, f) if f.count else _switched_units(trial, f)
    names = tuple(n for n in f.candidates if any(n in f.features_of(u) for u in units))
    window = _pick(trial, "window", config.data.window)
    data = DataSpec(
        features=names or f.candidates[:1],
        window=window,
        labels=config.labels,
        split=config.split,
        first_row=first_row,
    )
    model = _model(trial, config, len(data.features))
    return Plan(data, Params(model, _train(trial, config, bf16)), units)


def _switched_units(trial: Suggester, f: FeatureSection) -> tuple[str, ...]:
    """One on/off switch per unit: the plain space (each unit on with the sampler's odds)."""
    return tuple(u for u in f.units if trial.suggest_categorical(f"use/{u}", [True, False]))


def _counted_units(trial: Suggester, f: FeatureSection) -> tuple[str, ...]:
    """``[features.count]``: per counted group a count k in [low, high] (``count/<group>``,
    fixed where low == high), and per member feature a priority in [0, 1]
    (``priority/<name>``); the k members of highest priority are on (ties: catalog order).
    Units outside counted groups keep their ``use/<unit>`` switch.

    Every draw is valid by construction, so no trial is wasted on a count, and every
    parameter means what it did: a feature that helps rises in priority in good trials,
    which TPE's densities pick up; NSGA-II's crossover mixes two parents' priorities into a
    child that again has exactly k features (the "random keys" encoding of genetic
    algorithms); GP sees smooth [0, 1] inputs instead of many booleans. The alternatives
    each lose something: on/off switches with a count constraint waste nearly every trial
    (61 coin flips land on exactly 6 patterns about once in 10^10 tries); switches repaired
    to the count store values that did not run, misleading the sampler; "pick the i-th
    feature" categoricals collide and need repair too.
    """
    ks = {
        c.group: c.low if c.low == c.high else trial.suggest_int(f"count/{c.group}", c.low, c.high)
        for c in f.count
    }
    priority: dict[str, float] = {}
    on: set[str] = set()
    for u in f.units:
        if f.counted(u) is not None:
            priority[u] = trial.suggest_float(f"priority/{u}", 0.0, 1.0)
        elif trial.suggest_categorical(f"use/{u}", [True, False]):
            on.add(u)
    for c in f.count:
        ranked = sorted(f.members(c.group), key=lambda u: -priority[u])  # stable: catalog order
        on.update(ranked[: ks[c.group]])
    return tuple(u for u in f.units if u in on)


def feature_params(f: FeatureSection, units: Collection[str]) -> dict[str, Any]:
    """The feature parameters under which :func:`suggest` switches on exactly ``units``: the
    inverse of its feature draws (a trader's own setup -> its trial's parameters). Each
    counted group's count must be one ``[features.count]`` allows (the caller checks)."""
    on = set(units)
    if not f.count:
        return {f"use/{u}": u in on for u in f.units}
    params: dict[str, Any] = {}
    for c in f.count:
        if c.low < c.high:
            params[f"count/{c.group}"] = sum(1 for u in f.members(c.group) if u in on)
    for u in f.units:
        if f.counted(u) is not None:
            params[f"priority/{u}"] = 1.0 if u in on else 0.0
        else:
            params[f"use/{u}"] = u in on
    return params


def is_feature_param(name: str) -> bool:
    """``name`` is one of :func:`suggest`'s feature draws (a switch, count or priority)."""
    return name.startswith(("use/", "count/", "priority/"))


def unit_bounds(f: FeatureSection, params: dict[str, Any]) -> tuple[int, int]:
    """The fewest and the most units :func:`suggest` can switch on where ``params`` fix some
    of its feature draws and the sampler draws the rest."""
    low = high = 0
    for c in f.count:
        k = params.get(f"count/{c.group}")
        low, high = low + (c.low if k is None else int(k)), high + (c.high if k is None else int(k))
    for u in f.units:
        if f.counted(u) is None:
            on = params.get(f"use/{u}")
            low, high = low + (on is True), high + (on is not False)
    return low, high


class _Explorer:
    """A stand-in trial that records what :func:`suggest` asks for, answering each range with
    its low or high end and each choice with its first or last option (or a forced one)."""

    def __init__(self, high: bool, forced: dict[str, Any]) -> None:
        self.high, self.forced = high, forced
        self.asked: dict[str, BaseDistribution] = {}

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int:
        self.asked[name] = IntDistribution(low, high, step=step)
        return high if self.high else low

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self.asked[name] = FloatDistribution(low, high, log=log)
        return high if self.high else low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.asked[name] = CategoricalDistribution(choices)
        return self.forced.get(name, choices[-1] if self.high else choices[0])


def parameter_space(config: StudyConfig, *, capped: bool = True) -> dict[str, BaseDistribution]:
    """Every parameter :func:`suggest` may ask for in this study, with its range: asked of
    suggest itself at both ends of every range and under each option of every non-boolean
    choice (so ``lstm/*`` and ``xlstm/*`` both appear). ``capped=False``: the study's ranges
    before ``[caps]`` cut them."""
    if not capped:
        huge = 2**31 - 1
        config = replace(config, caps=replace(config.caps, max_width=huge, max_depth=huge))
    space: dict[str, BaseDistribution] = {}
    for high in (False, True):
        probe = _Explorer(high, {})
        suggest(probe, config)
        space |= probe.asked
        for name, dist in probe.asked.items():
            if isinstance(dist, CategoricalDistribution) and not all(
                isinstance(c, bool) for c in dist.choices
            ):
                for choice in dist.choices:
                    branch = _Explorer(high, {name: choice})
                    suggest(branch, config)
                    space |= branch.asked
    return space


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
