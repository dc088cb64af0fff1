"""A trader's own features: plugin files and precomputed columns, beside the catalog.

A plugin is a Python file that declares features with the catalog's own decorator (name, group,
warm-up, parameters, a function of the bars)::

    from xtune.features import register

    @register("range_z_20", "volatility", 19, "bar range z-scored over 20 bars", window=20)
    def range_z_20(bars):
        r = (bars["high"] - bars["low"]) / bars["close"]
        return (r - r.rolling(20).mean()) / r.rolling(20).std()

:func:`run_plugin` runs a file's bytes and marks each feature it declares with their hash
(``origin = "plugin:<sha256>"``), so the feature cache, the manifest and the bundle know exactly
which code made the values; :meth:`~xtune.features.FeatureSet.with_plugins` adds them to a
feature set. The search audits every plugin feature before any trial
(:mod:`xtune.features._audit`), and export copies the file into the bundle, whose loading runs
the same bytes on the trading PC, without torch.

A precomputed column (``[features] columns``) is read from the bars file as it is
(:func:`column_feature`). xtune cannot prove such a column causal: it says so, and predict then
requires the column in the live bars.

Example:
    >>> column_feature("my_signal").group
    'column'
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path

import pandas as pd

from xtune.errors import FeatureError
from xtune.features.reads import ReadLog
from xtune.features.registry import (
    COLUMN_GROUP,
    COLUMN_ORIGIN,
    PLUGIN,
    Declarations,
    Feature,
    FeatureFn,
    PluginFile,
    declaring,
)

__all__ = ["PLUGIN", "PluginFile", "column_feature", "fresh_feature", "read_plugin", "run_plugin"]


def read_plugin(path: str | Path) -> bytes:
    """A plugin file's bytes.

    Raises:
        FeatureError: the file is missing or unreadable, naming it.
    """
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FeatureError(
            f"{path}: plugin file cannot be read ({exc.strerror or exc}). Check the path in "
            "[features] plugins; it is relative to the study file."
        ) from None


def run_plugin(
    source: bytes, label: str, taken: Mapping[str, Feature]
) -> tuple[PluginFile, tuple[Feature, ...]]:
    """Run a plugin's bytes in a module of their own; the plugin and the features it declares
    (each with its plugin, and a :class:`~xtune.features.reads.ReadLog` of its own).

    Raises:
        FeatureError: the code does not import (naming the line), declares no feature, or
            declares one whose name is in ``taken`` or declared twice, whose group is unknown
            or whose warm-up is not a count.
    """
    sha = hashlib.sha256(source).hexdigest()
    try:
        declared = _run(
            source, label, f"xtune_plugin_{sha[:16]}", Declarations(PLUGIN + sha, taken)
        )
    except FeatureError as exc:
        raise FeatureError(f"{label}: {exc}") from None
    except Exception as exc:
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
    return plugin, tuple(replace(f, plugin=plugin, reads=ReadLog()) for f in declared.values())


def _run(source: bytes, label: str, name: str, declarations: Declarations) -> dict[str, Feature]:
    """Execute the trader's code as module ``name``; what it declared. The module is in
    ``sys.modules`` while it runs (dataclasses look their module up) and not after."""
    module = types.ModuleType(name)
    module.__file__ = label
    sys.modules[name] = module
    try:
        with declaring(declarations):
            exec(_compiled(source, label), module.__dict__)  # the trader's own code
    finally:
        sys.modules.pop(name, None)
    return declarations.features


_FRESH = itertools.count()  # numbers the modules of fresh runs apart


def fresh_feature(feature: Feature) -> Feature:
    """``feature`` as a fresh run of its plugin's bytes declares it, in a module of its own:
    no state an earlier call left behind (a memo, a counter, a cached frame) reaches the
    next call. It records the files it reads into ``feature``'s own log. The catalog's
    features and columns are returned as they are (stateless).

    Raises:
        FeatureError: the plugin fails or declares other features when run again.
    """
    plugin = feature.plugin
    if plugin is None:
        return feature
    name = f"xtune_plugin_{plugin.sha256[:16]}_fresh_{next(_FRESH)}"
    try:
        box = _run(plugin.source, plugin.label, name, Declarations(feature.origin))
    except Exception as exc:
        raise FeatureError(
            f"{plugin.label}: the plugin fails when run a second time{_line_of(exc, plugin.label)}"
            f": {type(exc).__name__}: {exc}. A plugin must declare the same features every time."
        ) from None
    if box.get(feature.name) != feature:  # the name, group, warm-up, memory, parameters
        raise FeatureError(
            f"{plugin.label}: declares feature {feature.name!r} differently (or not at all) when "
            "run a second time; a plugin must declare the same features every time."
        )
    return replace(box[feature.name], plugin=plugin, reads=feature.reads)


@cache
def _compiled(source: bytes, label: str) -> types.CodeType:
    return compile(source, label, "exec")


def _line_of(exc: Exception, label: str) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f" (line {exc.lineno})"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == label]
    return f" (line {lines[-1]})" if lines else ""


def column_feature(name: str) -> Feature:
    """A precomputed bar column as a feature (group ``column``, no warm-up).

    Raises:
        FeatureError: a name that is not an identifier.
    """
    if not name.isidentifier():
        raise FeatureError(
            f"column {name!r}: a feature name must be a Python identifier (letters, digits, "
            "_); rename the column in the bars file."
        )
    return Feature(
        name,
        COLUMN_GROUP,
        0,
        _column(name),
        {"column": name},
        "precomputed column of the bars file",
        origin=COLUMN_ORIGIN,
    )


def _column(name: str) -> FeatureFn:
    def values(bars: pd.DataFrame) -> pd.Series:
        return bars[name]

    return values
