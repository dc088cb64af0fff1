"""A trader's own features: plugin files and precomputed columns, beside the catalog.

A plugin is a Python file that declares features with the catalog's own decorator (name, group,
warm-up, parameters, a function of the bars)::

    from xtune.features import register

    @register("range_z_20", "volatility", 19, "bar range z-scored over 20 bars", window=20)
    def range_z_20(bars):
        r = (bars["high"] - bars["low"]) / bars["close"]
        return (r - r.rolling(20).mean()) / r.rolling(20).std()

:func:`load_plugin` runs a file once per content hash and marks each feature it declares with
that hash (``origin = "plugin:<sha256>"``), so the feature cache, the manifest and the bundle
know exactly which code made the values. The search audits every plugin feature before any
trial (:mod:`xtune.features._audit`), and export copies the file into the bundle, where
:func:`load_plugin_source` runs the same bytes on the trading PC, without torch.

A precomputed column (``[features] columns``) is read from the bars file as it is
(:func:`use_columns`). xtune cannot prove such a column causal: it says so, and predict then
requires the column in the live bars.

Example:
    >>> from xtune.features.plugins import use_columns
    >>> use_columns(["my_signal"])[0].group
    'column'
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from xtune.errors import FeatureError
from xtune.features.registry import (
    CATALOG,
    COLUMN_GROUP,
    COLUMN_ORIGIN,
    Feature,
    FeatureFn,
    add,
    apart,
    declaring,
    forget,
)

PLUGIN = "plugin:"


@dataclass(frozen=True)
class PluginFile:
    """A loaded plugin: where it came from, the hash of its bytes, the features it declared.

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


_LOADED: dict[str, PluginFile] = {}  # sha256 -> plugin: a file is run once per process


def load_plugin(path: str | Path) -> PluginFile:
    """Read and run a plugin file; see :func:`load_plugin_source`.

    Raises:
        FeatureError: the file is missing or unreadable, or see :func:`load_plugin_source`.
    """
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise FeatureError(
            f"{path}: plugin file cannot be read ({exc.strerror or exc}). Check the path in "
            "[features] plugins; it is relative to the study file."
        ) from None
    return load_plugin_source(source, str(path))


def load_plugin_source(source: bytes, label: str) -> PluginFile:
    """Run a plugin's bytes once and register its features (a second call with the same bytes
    returns the first result).

    Raises:
        FeatureError: the code does not import (naming the line), declares no feature, or
            declares one whose name is taken, whose group is unknown or whose warm-up is
            not a count; nothing it declared stays registered.
    """
    sha = hashlib.sha256(source).hexdigest()
    if sha in _LOADED:
        return _LOADED[sha]
    module = types.ModuleType(f"xtune_plugin_{sha[:16]}")
    module.__file__ = label
    try:
        with declaring(f"{PLUGIN}{sha}") as declared:
            sys.modules[module.__name__] = module  # dataclasses and pickling look a module up
            exec(compile(source, label, "exec"), module.__dict__)  # the trader's own code
    except FeatureError as exc:
        sys.modules.pop(module.__name__, None)
        raise FeatureError(f"{label}: {exc}") from None
    except Exception as exc:
        sys.modules.pop(module.__name__, None)
        raise FeatureError(
            f"{label}: the plugin does not import{_line_of(exc, label)}: "
            f"{type(exc).__name__}: {exc}. Fix the file and retry."
        ) from None
    if not declared:
        raise FeatureError(
            f"{label}: declares no feature. Decorate each feature function with "
            '@register("name", "group", warmup, "what it is") from xtune.features.'
        )
    plugin = PluginFile(label, sha, tuple(declared), source)
    _LOADED[sha] = plugin
    return plugin


_FRESH = itertools.count()  # numbers the modules of fresh runs apart


def fresh_feature(feature: Feature) -> Feature:
    """``feature`` as a fresh run of its plugin's bytes declares it, in a module of its own:
    no state an earlier call left behind (a memo, a counter, a cached frame) reaches the
    next call. The catalog's features and columns are returned as they are (stateless).

    Raises:
        FeatureError: the plugin fails or declares other features when run again.
    """
    if not feature.origin.startswith(PLUGIN):
        return feature
    plugin = _LOADED[feature.origin.removeprefix(PLUGIN)]
    module = types.ModuleType(f"xtune_plugin_{plugin.sha256[:16]}_fresh_{next(_FRESH)}")
    module.__file__ = plugin.label
    sys.modules[module.__name__] = module  # dataclasses look their module up while declared
    try:
        with apart(feature.origin) as box:
            exec(_compiled(plugin.source, plugin.label), module.__dict__)  # the trader's code
    except Exception as exc:
        raise FeatureError(
            f"{plugin.label}: the plugin fails when run a second time{_line_of(exc, plugin.label)}"
            f": {type(exc).__name__}: {exc}. A plugin must declare the same features every time."
        ) from None
    finally:
        sys.modules.pop(module.__name__, None)
    if box.get(feature.name) != feature:  # the name, group, warm-up, memory, parameters
        raise FeatureError(
            f"{plugin.label}: declares feature {feature.name!r} differently (or not at all) when "
            "run a second time; a plugin must declare the same features every time."
        )
    return box[feature.name]


@cache
def _compiled(source: bytes, label: str) -> types.CodeType:
    return compile(source, label, "exec")


def _line_of(exc: Exception, label: str) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f" (line {exc.lineno})"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == label]
    return f" (line {lines[-1]})" if lines else ""


def use_plugins(plugins: Sequence[PluginFile]) -> None:
    """Register plugins loaded in another process (a spawned search worker) from their bytes."""
    for plugin in plugins:
        load_plugin_source(plugin.source, plugin.label)


def use_columns(names: Sequence[str]) -> tuple[Feature, ...]:
    """Register precomputed bar columns as features (group ``column``, no warm-up).

    Raises:
        FeatureError: a name that is not an identifier, or that a catalog or plugin feature
            already has.
    """
    features = []
    for name in names:
        if not name.isidentifier():
            raise FeatureError(
                f"column {name!r}: a feature name must be a Python identifier (letters, digits, "
                "_); rename the column in the bars file."
            )
        feature = Feature(
            name,
            COLUMN_GROUP,
            0,
            _column(name),
            {"column": name},
            "precomputed column of the bars file",
            origin=COLUMN_ORIGIN,
        )
        add(feature)
        features.append(feature)
    return tuple(features)


def _column(name: str) -> FeatureFn:
    def values(bars: pd.DataFrame) -> pd.Series:
        return bars[name]

    return values


def columns_of(names: Sequence[str]) -> tuple[str, ...]:
    """The listed features that are precomputed columns (what the bars must carry)."""
    return tuple(n for n in names if n in CATALOG and CATALOG[n].origin == COLUMN_ORIGIN)


def plugins_of(names: Sequence[str]) -> tuple[PluginFile, ...]:
    """The loaded plugins that declare any of the listed features (what a bundle must carry)."""
    wanted = set(names)
    return tuple(p for p in _LOADED.values() if wanted & set(p.features))


def forget_all() -> None:
    """Unregister every plugin and column feature (tests; a process that switches studies)."""
    forget(PLUGIN)
    forget(COLUMN_ORIGIN)
    _LOADED.clear()
