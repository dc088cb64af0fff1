"""Which features a call sees: a :class:`FeatureSet`, an immutable name -> feature mapping.

The built-in catalog is one (:data:`~xtune.features.CATALOG`). A study's plugin files and
precomputed columns make another, built from it (:meth:`FeatureSet.with_plugins`,
:meth:`FeatureSet.with_columns`); loading a study file or a bundle returns theirs, and
:func:`~xtune.features.build_features`, :func:`~xtune.features.prepare`, the audit, the search,
export and predict take the one they compute from. Nothing is registered anywhere: two feature
sets in one process never see each other's features.

Example:
    >>> from xtune.features import CATALOG
    >>> mine = CATALOG.with_columns(["my_signal"])
    >>> mine["my_signal"].group, "my_signal" in CATALOG
    ('column', False)
    >>> mine.warmup_of(["ret_3", "my_signal"])
    3
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from xtune.errors import FeatureError
from xtune.features.plugins import column_feature, read_plugin, run_plugin
from xtune.features.registry import COLUMN_ORIGIN, GROUPS, Feature, PluginFile


@dataclass(frozen=True, eq=False)
class FeatureSet(Mapping[str, Feature]):
    """Feature name -> :class:`~xtune.features.registry.Feature`, in order: the catalog's, then
    each plugin's, then the precomputed columns. Immutable: the ``with_*`` methods return a
    new set. Two sets are equal when they hold equal features under the same names.

    Pickled (to a spawned search worker), a set carries its plugins' bytes and its column
    names, and the receiving process runs those bytes again on its own catalog.
    """

    features: Mapping[str, Feature]

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", MappingProxyType(dict(self.features)))

    def __getitem__(self, name: str) -> Feature:
        return self.features[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __hash__(self) -> int:
        return hash(tuple(self.features))

    def __repr__(self) -> str:
        own = [p.label for p in self.plugins] + list(self.columns)
        return f"FeatureSet({len(self)} features{': ' + ', '.join(own) if own else ''})"

    # ------------------------------------------------------------------ what it holds
    @property
    def plugins(self) -> tuple[PluginFile, ...]:
        """The plugin files its features came from, in order."""
        return tuple(
            {f.plugin.sha256: f.plugin for f in self.features.values() if f.plugin}.values()
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Its precomputed columns of the bars, in order."""
        return tuple(n for n, f in self.features.items() if f.origin == COLUMN_ORIGIN)

    def columns_of(self, names: Iterable[str]) -> tuple[str, ...]:
        """The listed features that are precomputed columns (what the bars must carry)."""
        return tuple(n for n in names if n in self and self[n].origin == COLUMN_ORIGIN)

    def plugins_of(self, names: Iterable[str]) -> tuple[PluginFile, ...]:
        """Its plugins that declare any of the listed features (what a bundle must carry)."""
        wanted = set(names)
        return tuple(p for p in self.plugins if wanted & set(p.features))

    def resolve(
        self, names: Iterable[str] | None = None, groups: Iterable[str] | None = None
    ) -> tuple[str, ...]:
        """Feature names in set order from explicit names and/or whole groups (None: all).

        Raises:
            FeatureError: for an unknown name or group, listing the valid ones.
        """
        names = list(names or [])
        groups = list(groups or [])
        unknown_groups = [g for g in groups if g not in GROUPS]
        if unknown_groups:
            raise FeatureError(
                f"unknown feature group(s) {unknown_groups}; groups are {list(GROUPS)}."
            )
        unknown = [n for n in names if n not in self]
        if unknown:
            raise FeatureError(
                f"unknown feature(s) {unknown}. Run `xtune features list` to see the catalog."
            )
        if not names and not groups:
            return tuple(self)
        wanted = set(names) | {n for n, f in self.items() if f.group in groups}
        return tuple(n for n in self if n in wanted)

    def warmup_of(self, names: Iterable[str]) -> int:
        """Rows to drop before every listed feature is valid."""
        return max((self[n].warmup for n in names), default=0)

    def history_of(self, names: Iterable[str]) -> int:
        """Bars of history before the first row whose listed features no longer depend on
        where computation started (each feature's memory, at least its warm-up)."""
        return max((max(self[n].memory, self[n].warmup) for n in names), default=0)

    # ------------------------------------------------------------------ new sets
    def with_plugins(self, paths: Sequence[str | Path]) -> FeatureSet:
        """This set and the features each plugin file declares (see
        :mod:`xtune.features.plugins`); a file whose bytes are already here is skipped.

        Raises:
            FeatureError: a file missing or unreadable, code that does not import (naming the
                line), no feature declared, or one that is not valid or whose name is taken.
        """
        out = self
        for path in paths:
            out = out.with_plugin_source(read_plugin(path), str(path))
        return out

    def with_plugin_source(self, source: bytes, label: str) -> FeatureSet:
        """This set and the features a plugin's bytes declare (``label``: where they came
        from, for messages); bytes already here are not run again.

        Raises:
            FeatureError: as :meth:`with_plugins`.
        """
        if any(p.source == source for p in self.plugins):
            return self
        _, declared = run_plugin(source, label, self.features)
        return FeatureSet({**self.features, **{f.name: f for f in declared}})

    def with_columns(self, names: Iterable[str]) -> FeatureSet:
        """This set and the listed precomputed columns of the bars (group ``column``).

        Raises:
            FeatureError: a name that is not an identifier, or that a catalog or plugin
                feature already has.
        """
        features = dict(self.features)
        for name in names:
            column = column_feature(name)
            if name in features and features[name] != column:
                raise FeatureError(
                    f"{name!r} is already a feature of {features[name].where}; rename the "
                    "column in the bars file."
                )
            features[name] = column
        return FeatureSet(features)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its plugins' bytes and its column names (see the class docstring); a
        # TypeError for a set holding other features (built by hand): no process rebuilds it.
        from xtune.features.catalog import CATALOG

        plugins, columns = self.plugins, self.columns
        rebuilt = [*CATALOG, *(n for p in plugins for n in p.features), *columns]
        if rebuilt != list(self) or any(self[n] is not f for n, f in CATALOG.items()):
            raise TypeError(
                "this FeatureSet holds features other than the catalog's, its plugins' and its "
                "columns': no other process can rebuild it"
            )
        return (_rebuilt, (plugins, columns))


def _rebuilt(plugins: tuple[PluginFile, ...], columns: tuple[str, ...]) -> FeatureSet:
    """The catalog with these plugins (run from their bytes) and columns."""
    from xtune.features.catalog import CATALOG

    out = CATALOG
    for plugin in plugins:
        out = out.with_plugin_source(plugin.source, plugin.label)
    return out.with_columns(columns) if columns else out
