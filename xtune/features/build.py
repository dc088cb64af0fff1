"""Compute a feature list on bars once, drop the warm-up, check the values, cache the result.

The cache key is the bars' content hash plus the exact definitions of the listed features and
the library versions, so a changed file, feature or library never serves stale values. A plugin
feature that opens files while it computes (:mod:`xtune.features.reads`) adds the hash of each
file's bytes: beside the frame the cache records which files the build read, a lookup hashes
those files as they are now, and an edited data file is a miss, as an edited plugin is.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import track

from xtune.errors import FeatureError
from xtune.features._formats import has_parquet
from xtune.features.bars import Bars
from xtune.features.catalog import CATALOG
from xtune.features.feature_set import FeatureSet
from xtune.features.reads import ReadLog, file_hashes
from xtune.features.registry import PLUGIN, Feature

# A feature this large is broken, not informative (features are ratios and oscillators).
MAX_FEATURE_ABS = 1e9
# Raise when a catalog function's code changes its values, even by float rounding, so cached
# features are recomputed and training and the live bot run the same code. 2: the array
# versions of ta's windowed indicators (features/_indicators.py).
CODE_VERSION = 2


def default_cache_dir() -> Path:
    """``~/.cache/xtune``; commands pass ``$XTUNE_CACHE_DIR`` from their settings instead."""
    from xtune import settings

    return settings.DEFAULT_CACHE_DIR


def feature_specs(names: Sequence[str], feature_set: FeatureSet = CATALOG) -> list[dict[str, Any]]:
    """Name, group, warm-up and parameters of each listed feature (the export manifest's spec)."""
    return [_spec(feature_set[n]) for n in names]


def _spec(f: Feature) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": f.name,
        "group": f.group,
        "warmup": f.warmup,
        "params": dict(f.params),
    }
    if f.origin:  # a plugin's file hash, or "column"; absent for the catalog (older bundles)
        spec["origin"] = f.origin
    return spec


def feature_fingerprint(
    names: Sequence[str], feature_set: FeatureSet = CATALOG
) -> dict[str, object]:
    """Everything that defines the listed features' values."""
    return {
        "features": feature_specs(names, feature_set),
        "code": CODE_VERSION,
        "ta": version("ta"),
        "ta-lib": version("ta-lib"),
        "pandas": version("pandas"),
    }


def cache_key(
    bars: Bars,
    names: Sequence[str],
    files: Mapping[str, str] | None = None,
    feature_set: FeatureSet = CATALOG,
) -> str:
    """The hash of everything the listed features' values depend on; ``files``: path -> sha256
    of each file their plugins read (:func:`own_reads`)."""
    fingerprint = feature_fingerprint(names, feature_set)
    if files:
        fingerprint["files"] = dict(files)
    blob = json.dumps(fingerprint, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{bars.sha256}\n{blob}".encode())
    # a precomputed column's values are not in bars.sha256
    for name in feature_set.columns_of(names):
        digest.update(np.ascontiguousarray(bars.frame[name].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def compute_features(
    bars: Bars, names: Sequence[str], *, feature_set: FeatureSet = CATALOG, progress: bool = False
) -> pd.DataFrame:
    """All listed features of ``feature_set`` on all bars, warm-up rows included (as NaN). No
    cache, no checks."""
    columns = {}
    items = [feature_set[n] for n in names]
    for feature in track(items, description="features", disable=not progress, transient=True):
        columns[feature.name] = feature.values(bars.frame)
    return pd.DataFrame(columns, index=bars.index)


def build_features(
    bars: Bars,
    names: Sequence[str] | None = None,
    *,
    feature_set: FeatureSet = CATALOG,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Feature frame for ``names`` (default: every feature of ``feature_set``), warm-up rows
    dropped.

    Args:
        bars: validated bars from :func:`~xtune.features.bars.load_bars`.
        names: feature names of ``feature_set``, in any order (output is in its order).
        feature_set: the features the names are looked up in (a study's or a bundle's,
            with its plugins and columns; default the built-in catalog).
        cache_dir: where cached frames live (default :func:`default_cache_dir`).
        use_cache: read and write the cache (Parquet: off where pyarrow is not installed).
        progress: show a progress bar.

    Returns:
        float64 DataFrame indexed by bar time, starting ``feature_set.warmup_of(names)`` bars
        after the first bar, with every value finite.

    Raises:
        FeatureError: unknown name, or a feature that is NaN/inf or absurdly large after its
            warm-up (naming the feature and the first bad time).
    """
    names = feature_set.resolve(names)
    if not names:
        raise FeatureError("no features selected; pass at least one feature name or group.")
    warmup = feature_set.warmup_of(names)
    if len(bars) <= warmup:
        raise FeatureError(
            f"{bars.source}: {len(bars)} bars, but the selected features need {warmup} bars of "
            "warm-up before the first valid value. Use more bars or drop long-window features."
        )
    use_cache = use_cache and has_parquet()  # the cache is Parquet: off without the parquet extra
    root = (cache_dir or default_cache_dir()) / "features" if use_cache else None
    if root is not None:
        cached = _cached(root, bars, names, feature_set)
        if cached is not None:
            return cached
    frame = compute_features(bars, names, feature_set=feature_set, progress=progress)
    frame = frame.iloc[warmup:]
    _check_values(frame, bars.source)
    if root is not None:
        _store(root, bars, names, frame, feature_set)
    return frame


def own_reads(
    names: Sequence[str], feature_set: FeatureSet = CATALOG
) -> dict[str, tuple[str, ...]] | None:
    """Each listed plugin feature -> the files it read in this process (absolute paths); None
    when one has not computed here yet, so its files are unknown. Other features read none."""
    reads = {n: _log(feature_set[n]).paths for n in names if _is_plugin(feature_set[n])}
    if any(paths is None for paths in reads.values()):
        return None
    return {n: paths or () for n, paths in reads.items()}


def _is_plugin(feature: Feature) -> bool:
    return feature.origin.startswith(PLUGIN)


def _log(feature: Feature) -> ReadLog:
    assert feature.reads is not None  # every plugin feature has its log (features/plugins.py)
    return feature.reads


def _frame_path(
    root: Path,
    bars: Bars,
    names: Sequence[str],
    reads: dict[str, tuple[str, ...]],
    feature_set: FeatureSet,
) -> Path:
    files = file_hashes(p for paths in reads.values() for p in paths)  # as they are now
    key = cache_key(bars, names, files, feature_set)
    return root / f"{bars.sha256[:16]}-{key[:24]}.parquet"


def _reads_path(root: Path, bars: Bars, names: Sequence[str], feature_set: FeatureSet) -> Path:
    """Where a build of these features on these bars records the files its plugins read."""
    key = cache_key(bars, names, feature_set=feature_set)
    return root / f"{bars.sha256[:16]}-{key[:24]}.reads.json"


def _cached(
    root: Path, bars: Bars, names: Sequence[str], feature_set: FeatureSet
) -> pd.DataFrame | None:
    """The cached frame under the key of the files its plugins read, hashed as they are now."""
    reads = own_reads(names, feature_set)
    if reads is None:  # not computed here: the files the last build recorded
        path = _reads_path(root, bars, names, feature_set)
        try:
            reads = {n: tuple(p) for n, p in json.loads(path.read_text()).items()}
        except (OSError, ValueError, TypeError):
            return None
        if set(reads) != {n for n in names if _is_plugin(feature_set[n])}:
            return None
    frame = _read_cache(_frame_path(root, bars, names, reads, feature_set), names)
    if frame is not None:
        for name, paths in reads.items():  # known here from now on (the trial record, export)
            _log(feature_set[name]).add(paths)
    return frame


def _store(
    root: Path, bars: Bars, names: Sequence[str], frame: pd.DataFrame, feature_set: FeatureSet
) -> None:
    reads = own_reads(names, feature_set)
    if reads is None:  # pragma: no cover - compute_features ran every plugin feature
        return
    if reads:
        path = _reads_path(root, bars, names, feature_set)
        _write_atomic(path, json.dumps(reads).encode())
    _write_cache(_frame_path(root, bars, names, reads, feature_set), frame)


def latest_features(
    bars: Bars, names: Sequence[str], rows: int, *, feature_set: FeatureSet = CATALOG
) -> pd.DataFrame:
    """The newest ``rows`` rows of the listed features, computed over only the newest
    ``feature_set.history_of(names) + rows`` bars: what :func:`build_features` gives for those rows on any
    longer history, to 1e-6 of each feature's scale (the memory declarations, see
    :mod:`xtune.features.history`). For the live bot, which pays per bar computed and, more,
    per call: every feature reads the one shared tail.

    Raises:
        FeatureError: fewer bars than that, or a value that is NaN/inf or absurdly large.
    """
    names = feature_set.resolve(names)
    need = feature_set.history_of(names) + rows
    if len(bars) < need:
        raise FeatureError(
            f"{bars.source}: {len(bars)} bars, but the newest {rows} rows of these features "
            f"need {need}. Pass a longer history."
        )
    tail = bars.frame.iloc[-need:]
    columns = {name: feature_set[name].values(tail)[-rows:] for name in names}
    frame = pd.DataFrame(columns, index=bars.index[-rows:])
    _check_values(frame, bars.source)
    return frame


def _check_values(frame: pd.DataFrame, source: str) -> None:
    values = frame.to_numpy()
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_FEATURE_ABS)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        name = frame.columns[col]
        raise FeatureError(
            f"{source}: feature {name!r} is {values[row, col]:.4g} at {frame.index[row]} (after its "
            "warm-up). This usually means broken bars around that time (a frozen or zero price "
            "run); check them with `xtune data check`, or leave this feature out."
        )


def _read_cache(path: Path, names: Sequence[str]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # a torn or foreign file: recompute, never trust it
        warnings.warn(f"ignoring unreadable feature cache {path}: {exc}", stacklevel=3)
        return None
    if list(frame.columns) != list(names):
        return None
    return frame


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_cache(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: concurrent search workers never read a half-written file.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    frame.to_parquet(tmp)
    tmp.replace(path)
