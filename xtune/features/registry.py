"""The catalog's machinery: a feature is a name, a group, a warm-up and a pure function of the
bars; ``register`` adds one, ``CATALOG`` reads them all in registration order."""

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
    """One catalog entry. ``params`` go into the export manifest beside the name."""

    name: str
    group: str
    warmup: int
    fn: FeatureFn = field(repr=False, compare=False)
    params: Mapping[str, object] = field(default_factory=dict)
    doc: str = ""
    # The value of a 0/0 after warm-up (flat or zero-volume stretches), e.g. 0.5 for an
    # oscillator in [0, 1]. None: such a NaN stays and the build reports it.
    neutral: float | None = None

    def compute(self, bars: pd.DataFrame) -> pd.Series:
        out = self.fn(bars).astype(np.float64)
        if self.neutral is not None:
            after = np.arange(len(out)) >= self.warmup
            out = out.where(~(after & out.isna().to_numpy()), self.neutral)
        out.name = self.name
        return out


_REGISTRY: dict[str, Feature] = {}


def register(
    name: str, group: str, warmup: int, doc: str, *, neutral: float | None = None, **params: object
) -> Callable[[FeatureFn], FeatureFn]:
    def wrap(fn: FeatureFn) -> FeatureFn:
        if name in _REGISTRY:  # pragma: no cover - a programming error caught at import
            raise RuntimeError(f"duplicate feature {name}")
        _REGISTRY[name] = Feature(
            name, group, warmup, fn, MappingProxyType(dict(params)), doc, neutral
        )
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
