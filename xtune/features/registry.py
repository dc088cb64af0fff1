"""The catalog's machinery: a feature is a name, a group, a warm-up, a memory and a pure function
of the bars, declared with a :class:`Declarations`' ``register``; which features a call sees is
a :class:`~xtune.features.feature_set.FeatureSet` value, never module state.

A trader's own features use the same ``register`` (:func:`register`) in a plugin file, which
xtune runs into a feature set of its own (:mod:`xtune.features.plugins`); precomputed columns of
the bars file join a feature set too. Each such feature carries its ``origin``, so a name can
never silently mean two things."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from xtune.errors import FeatureError
from xtune.features.reads import ReadLog, watching

GROUPS = ("returns", "trend", "momentum", "volatility", "volume", "pattern", "calendar")
COLUMN_GROUP = "column"  # a precomputed column of the bars file, ``[features] columns``
COLUMN_ORIGIN = "column"  # ... and its origin (a plugin's is "plugin:<sha256>")
PLUGIN = "plugin:"  # a plugin feature's origin: this and the sha256 of the file's bytes

FeatureFn = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Feature:
    """One feature (of the catalog, a plugin or a column). ``params`` go into the export
    manifest beside the name.

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
    plugin: PluginFile | None = field(default=None, compare=False, repr=False)  # whose bytes
    # The files a plugin feature opened while it computed here (xtune.features.reads).
    reads: ReadLog | None = field(default=None, compare=False, repr=False)

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
            with watching(self.reads, self.origin):  # the files it opens (features/reads.py)
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


@dataclass(frozen=True)
class PluginFile:
    """A plugin file as xtune ran it: where it came from, the hash of its bytes, the features
    it declared.

    The source travels with it (to spawned workers and into bundles), so every process runs
    the very bytes that were hashed, never a file edited since.
    """

    label: str  # the path as the study file resolved it, or the file inside a bundle
    sha256: str
    features: tuple[str, ...]
    source: bytes = field(repr=False)

    @property
    def origin(self) -> str:
        return f"{PLUGIN}{self.sha256}"


def _first_non_number(values: pd.Series) -> object:
    """The first value of ``values`` that is not a number (for a message)."""
    for v in values:
        try:
            float(v)
        except (TypeError, ValueError):
            return v
    return values.iloc[0]


class Declarations:
    """The features one origin declares, in declaration order: the catalog's modules as they
    import (origin ""), or one run of a plugin file's bytes (``"plugin:<sha256>"``).

    Args:
        origin: what every feature declared here carries as :attr:`Feature.origin`.
        taken: names declared elsewhere (the feature set a plugin joins), refused here.
    """

    def __init__(self, origin: str, taken: Mapping[str, Feature] | None = None) -> None:
        self.origin = origin
        self.taken: Mapping[str, Feature] = taken if taken is not None else {}
        self.features: dict[str, Feature] = {}

    def register(
        self,
        name: str,
        group: str,
        warmup: int,
        doc: str,
        *,
        neutral: float | None = None,
        memory: int | None = None,
        **params: object,
    ) -> Callable[[FeatureFn], FeatureFn]:
        """Declare a feature; ``memory`` defaults to ``warmup`` (a finite window, see
        :class:`Feature`). Returns the decorator that takes its function."""

        def wrap(fn: FeatureFn) -> FeatureFn:
            problem = _declaration_problem(name, group, warmup, memory, self._names())
            if problem and self.origin:
                raise FeatureError(problem)
            if problem:  # pragma: no cover - a programming error in the catalog, caught at import
                raise RuntimeError(problem)
            self.features[name] = Feature(
                name,
                group,
                warmup,
                fn,
                MappingProxyType(dict(params)),
                doc,
                neutral,
                warmup if memory is None else memory,
                self.origin,
            )
            return fn

        return wrap

    def _names(self) -> Mapping[str, Feature]:
        return {**self.taken, **self.features}


Register = Callable[..., Callable[[FeatureFn], FeatureFn]]  # Declarations.register's shape

# The declarations of the plugin whose bytes run in this thread, if any (see ``declaring``).
_DECLARING: ContextVar[Declarations | None] = ContextVar("xtune_declaring", default=None)


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
    """Declare a feature of the plugin file xtune is running (see
    :meth:`~xtune.features.FeatureSet.with_plugins`); ``memory`` defaults to ``warmup``.

    Raises:
        FeatureError: called outside a plugin run (a plugin file is run by xtune, from
            ``[features] plugins``, not imported), or a declaration that is not valid.
    """
    declarations = _DECLARING.get()
    if declarations is None:
        raise FeatureError(
            f"register({name!r}, ...) declares a feature of a plugin file, which xtune runs: "
            "list the file in the study's [features] plugins (or pass it to "
            "FeatureSet.with_plugins) instead of importing it."
        )
    return declarations.register(name, group, warmup, doc, neutral=neutral, memory=memory, **params)


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
def declaring(declarations: Declarations) -> Iterator[Declarations]:
    """Within the block, :func:`register` declares into ``declarations`` (a plugin's run)."""
    token = _DECLARING.set(declarations)
    try:
        yield declarations
    finally:
        _DECLARING.reset(token)


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
