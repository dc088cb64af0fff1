"""The catalog's machinery: a feature is a name, a group, a warm-up, a memory and a pure function
of the bars; ``register`` adds one, ``CATALOG`` reads them all in registration order.

A trader's own features use the same ``register`` from a plugin file, and precomputed columns of
the bars file are registered too (:mod:`xtune.features.plugins`); each such feature carries its
``origin``, so a name can never silently mean two things."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from xtune.errors import FeatureError
from xtune.features.reads import watching

GROUPS = ("returns", "trend", "momentum", "volatility", "volume", "pattern", "calendar")
COLUMN_GROUP = "column"  # a precomputed column of the bars file, ``[features] columns``
COLUMN_ORIGIN = "column"  # ... and its origin (a plugin's is "plugin:<sha256>")

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
    origin: str = ""  # "": the catalog; "plugin:<sha256 of the file>"; "column"

    def compute(self, bars: pd.DataFrame) -> pd.Series:
        return pd.Series(self.values(bars), index=bars.index, name=self.name)

    def values(self, bars: pd.DataFrame) -> np.ndarray:
        """The feature on every bar as float64, with :attr:`neutral` in place of a NaN after
        the warm-up. # [T]"""
        out = self.fn(bars) if not self.origin else self._foreign(bars)
        x = np.array(out, dtype=np.float64)  # a copy: never a view into the function's data
        if self.neutral is not None:
            after = np.arange(len(x)) >= self.warmup
            x[after & np.isnan(x)] = self.neutral
        return x

    @property
    def where(self) -> str:
        """Who declared it, for messages: the catalog, a plugin (by hash) or a bars column."""
        if not self.origin:
            return "the catalog"
        return "a column of the bars" if self.origin == COLUMN_ORIGIN else self.origin[:19]

    def _foreign(self, bars: pd.DataFrame) -> pd.Series:
        """A plugin's function, held to the catalog's contract: one number per bar, or a
        clear error naming the feature (never a traceback from inside the trader's code)."""
        try:
            with watching(self.origin, self.name):  # the files it opens (features/reads.py)
                out = self.fn(bars.copy())  # a copy: a column the function adds stays its own
        except Exception as exc:
            raise FeatureError(
                f"feature {self.name!r} ({self.where}) raised {type(exc).__name__}: {exc}. "
                "Fix its function; `xtune features audit` runs it on sample bars."
            ) from None
        if not isinstance(out, pd.Series) or len(out) != len(bars):
            got = f"{type(out).__name__} of length {len(out) if hasattr(out, '__len__') else '?'}"
            raise FeatureError(
                f"feature {self.name!r} ({self.where}) returned a {got} for {len(bars)} bars; "
                "return a pandas Series on the bars' index."
            )
        try:
            numbers = out.to_numpy(np.float64)
        except (TypeError, ValueError):
            raise FeatureError(
                f"feature {self.name!r} ({self.where}) returned {out.dtype} values such as "
                f"{_first_non_number(out)!r}; return numbers, one per bar (e.g. 1.0 / -1.0 in "
                "place of 'up' / 'down')."
            ) from None
        return pd.Series(numbers, index=bars.index)


def _first_non_number(values: pd.Series) -> object:
    """The first value of ``values`` that is not a number (for a message)."""
    for v in values:
        try:
            float(v)
        except (TypeError, ValueError):
            return v
    return values.iloc[0]


_REGISTRY: dict[str, Feature] = {}
_DECLARING: list[str] = []  # the origin of the plugin being loaded, if any (see ``declaring``)
_APART: list[dict[str, Feature]] = []  # where registrations go instead, if any (see ``apart``)


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

    origin = _DECLARING[-1] if _DECLARING else ""

    def wrap(fn: FeatureFn) -> FeatureFn:
        target = _APART[-1] if _APART else _REGISTRY
        problem = _declaration_problem(name, group, warmup, memory, target)
        if problem and origin:
            raise FeatureError(problem)
        if problem:  # pragma: no cover - a programming error in the catalog, caught at import
            raise RuntimeError(problem)
        target[name] = Feature(
            name,
            group,
            warmup,
            fn,
            MappingProxyType(dict(params)),
            doc,
            neutral,
            warmup if memory is None else memory,
            origin,
        )
        return fn

    return wrap


def _declaration_problem(
    name: str, group: str, warmup: int, memory: int | None, taken: Mapping[str, Feature]
) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        return f"feature name {name!r} must be a Python identifier (letters, digits, _)"
    if name in taken:
        return f"feature {name!r} is already declared by {taken[name].where}; rename yours"
    if group not in GROUPS:
        return f"feature {name!r}: group {group!r} is not one of {list(GROUPS)}"
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        return f"feature {name!r}: warm-up {warmup!r} must be a non-negative integer"
    if memory is not None and memory < warmup:
        return f"feature {name!r}: memory {memory} is shorter than its warm-up {warmup}"
    return ""


@contextlib.contextmanager
def declaring(origin: str) -> Iterator[list[str]]:
    """Register the block's features with ``origin``; yields the names declared, and removes
    them again when the block raises (a plugin that fails half-way leaves nothing behind)."""
    before = set(_REGISTRY)
    _DECLARING.append(origin)
    declared: list[str] = []
    try:
        yield declared
        declared.extend(n for n in _REGISTRY if n not in before)
    except BaseException:
        for n in [n for n in _REGISTRY if n not in before]:
            del _REGISTRY[n]
        raise
    finally:
        _DECLARING.pop()


@contextlib.contextmanager
def apart(origin: str) -> Iterator[Mapping[str, Feature]]:
    """Register the block's features with ``origin`` into the yielded mapping, never into the
    catalog: a second, independent run of a plugin's code (see
    :func:`xtune.features.plugins.fresh_feature`)."""
    box: dict[str, Feature] = {}
    _DECLARING.append(origin)
    _APART.append(box)
    try:
        yield MappingProxyType(box)
    finally:
        _APART.pop()
        _DECLARING.pop()


def add(feature: Feature) -> None:
    """Register a feature built elsewhere (a precomputed column), refusing a taken name."""
    if feature.name in _REGISTRY and _REGISTRY[feature.name] != feature:
        raise FeatureError(
            f"{feature.name!r} is already a feature of {_REGISTRY[feature.name].where}; rename "
            "the column in the bars file."
        )
    _REGISTRY[feature.name] = feature


def forget(origin_prefix: str) -> None:
    """Drop every feature whose origin starts with ``origin_prefix`` (never the catalog's)."""
    if not origin_prefix:
        raise ValueError("the catalog cannot be forgotten")
    for n in [n for n, f in _REGISTRY.items() if f.origin.startswith(origin_prefix)]:
        del _REGISTRY[n]


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
