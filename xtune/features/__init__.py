"""The data side: OHLCV bars -> leak-free, scaled, zero-copy training windows.

Follow one data set forward: :func:`load_bars` -> :func:`build_features` (catalog) ->
labels -> :func:`chronological_split` -> :func:`fit_robust` -> :func:`windows`; or all at once
with :func:`prepare`. :func:`audit` checks features for look-ahead, warm-up and scale.
Which features a call sees is a :class:`FeatureSet` it is given: the built-in :data:`CATALOG`
by default, or a study's (the catalog with its plugin files, which declare features with
:func:`register`, and its precomputed columns: :meth:`FeatureSet.with_plugins`,
:meth:`FeatureSet.with_columns`).
"""

from __future__ import annotations

from xtune.features._audit import AuditReport, FeatureAudit, audit
from xtune.features._windows import windows, windows_ending_at
from xtune.features.bars import Bars, load_bars
from xtune.features.build import build_features, compute_features, default_cache_dir
from xtune.features.catalog import CATALOG, GROUPS, Feature, history_of, resolve, warmup_of
from xtune.features.dataset import Dataset, DataSpec, Part, ScaledFold, prepare
from xtune.features.feature_set import FeatureSet
from xtune.features.labels import LabelSpec, directions, forward_returns
from xtune.features.registry import PluginFile, register
from xtune.features.scaler import RobustScaler, fit_robust, inverse, transform
from xtune.features.split import Fold, Split, SplitSpec, chronological_split, min_rows
from xtune.features.summary import BarsSummary, summarize

__all__ = [
    "CATALOG",
    "GROUPS",
    "AuditReport",
    "Bars",
    "BarsSummary",
    "DataSpec",
    "Dataset",
    "Feature",
    "FeatureAudit",
    "FeatureSet",
    "Fold",
    "LabelSpec",
    "Part",
    "PluginFile",
    "RobustScaler",
    "ScaledFold",
    "Split",
    "SplitSpec",
    "audit",
    "build_features",
    "chronological_split",
    "compute_features",
    "default_cache_dir",
    "directions",
    "fit_robust",
    "forward_returns",
    "history_of",
    "inverse",
    "load_bars",
    "min_rows",
    "prepare",
    "register",
    "resolve",
    "summarize",
    "transform",
    "warmup_of",
    "windows",
    "windows_ending_at",
]
