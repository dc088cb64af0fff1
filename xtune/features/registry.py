"""The catalog's machinery: a feature is a name, a group, a warm-up, a memory and a pure function
of the bars; ``register`` adds one, ``CATALOG`` reads them all in registration order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from xtune.errors import FeatureError

GROUPS = ("returns", "trend", "momentum", "volatility", "volume", "pattern", "calendar")

FeatureFn = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Feature:
    """One catalog entry. ``params`` go into the export manifest beside the name.

    ``warmup``: leading rows that are invalid (NaN). ``memory``: bars from the first bar after
    which the value no longer depends on where computation started, to 1e-6 of the feature's
    training scale. A finite-window feature (a rolling mean, a candlestick pattern) forgets
    its start once valid, so memory = warmup; a recursive one (EMA, Wilder smoothing) carries
    its seed forever with a decaying weight and declares more (checked by
    :func:`xtune.features.history.memory_violations` on real bars).
    """

    name: str
    group: str
    warmup: int
    fn: FeatureFn = field(repr=False, compare=False)
    params: Mapping[str, object] = field(default_factory=dict)
    doc: str = ""
    # The value of a 0/0 after warm-up (flat or zero-volume stretches), e.g. 0.5 for an
    # oscillator in [0, 1]. None: such a NaN stays and the build reports it.
    neutral: float | None = None
    memory: int = 0  # register() sets it, at least the warm-up

    def compute(self, bars: pd.DataFrame) -> pd.Series:
        out = self.fn(bars).astype(np.float64)
        if self.neutral is not None:
            after = np.arange(len(out)) >= self.warmup
            out = out.where(~(after & out.isna().to_numpy()), self.neutral)
        out.name = self.name
        return out


_REGISTRY: dict[str, Feature] = {}


def register(
    name: str,
    group: str,
    warmup: int,
    doc: str,
    *,
    neutral: float | None = None,
    memory: int | None = None,
    **params: object,
) -> Callable[[FeatureFn], FeatureFn]:
    """Add a feature; ``memory`` defaults to ``warmup`` (a finite window, see :class:`Feature`)."""

    def wrap(fn: FeatureFn) -> FeatureFn:
        if name in _REGISTRY:  # pragma: no cover - a programming error caught at import
            raise RuntimeError(f"duplicate feature {name}")
        if memory is not None and memory < warmup:  # pragma: no cover - caught at import
            raise RuntimeError(f"{name}: memory {memory} is shorter than its warm-up {warmup}")
        _REGISTRY[name] = Feature(name, group, warmup, fn, MappingProxyType(dict(params)), doc,
                                  neutral, warmup if memory is None else memory)  # fmt: skip
        return fn

    return wrap


CATALOG: Mapping[str, Feature] = MappingProxyType(_REGISTRY)  # a live, read-only view


def resolve(
    names: Iterable[str] | None = None, groups: Iterable[str] | None = None
) -> tuple[str, ...]:
    """Feature names in catalog order from explicit names and/or whole groups (None: all).

    Raises:
        FeatureError: for an unknown name or group, listing the valid ones.
    """
    names = list(names or [])
    groups = list(groups or [])
    unknown_groups = [g for g in groups if g not in GROUPS]
    if unknown_groups:
        raise FeatureError(f"unknown feature group(s) {unknown_groups}; groups are {list(GROUPS)}.")
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        raise FeatureError(
            f"unknown feature(s) {unknown}. Run `xtune features list` to see the catalog."
        )
    if not names and not groups:
        return tuple(CATALOG)
    wanted = set(names) | {n for n, f in CATALOG.items() if f.group in groups}
    return tuple(n for n in CATALOG if n in wanted)


def warmup_of(names: Iterable[str]) -> int:
    """Rows to drop before every listed feature is valid."""
    return max((CATALOG[n].warmup for n in names), default=0)


def history_of(names: Iterable[str]) -> int:
    """Bars of history before the first row whose listed features no longer depend on where
    computation started (each feature's memory, at least its warm-up)."""
    return max((max(CATALOG[n].memory, CATALOG[n].warmup) for n in names), default=0)


def smoothing_memory(alpha: float, stages: int = 1, weight: float = 1e-8) -> int:
    """Bars after which a chain of ``stages`` exponential smoothers with factor ``alpha``
    (EMA span n: 2 / (n + 1); Wilder n: 1 / n) holds under ``weight`` of its seeds.

    1e-8 leaves a seed off by 100x the feature's scale within 1e-6 of it. A chain of smoothers
    with different factors is bounded by its slowest factor at every stage.
    """
    d = np.ones(stages)  # [stages] each stage's remaining seed weight
    bars = 0
    while d.max() >= weight:
        d = (1.0 - alpha) * d + alpha * np.concatenate([[0.0], d[:-1]])
        bars += 1
    return bars
