"""The trader's own features inside a bundle: plugin files written by export and run again on
load, and the precomputed columns the live bars must carry. Torch-free.

Export copies each plugin that declares one of the model's features into the bundle as
``plugin-<sha256[:16]>.py`` (hashed with every other file). :func:`activate` runs those
verified bytes into the bundle's own feature set when the bundle is opened, so the trading PC
computes the very functions the model was trained on, and checks that each still declares what
the manifest lists.

A plugin that reads files while it computes (a calendar, a series looked up by bar time) opens
them by its own path on the trading PC; they are not in the bundle, since a copy there is not
where the plugin looks. The manifest records the hash of each file's bytes, and :func:`activate`
refuses the bundle, naming the file, where one is missing or differs: the model then sees the
values it was trained and tested on, or does not start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from xtune.errors import BundleError, XtuneError
from xtune.features.catalog import CATALOG
from xtune.features.feature_set import FeatureSet
from xtune.features.reads import changed_file, read_hashes
from xtune.runtime.manifest import Manifest, PluginEntry


def write_plugins(
    folder: Path, features: Sequence[str], feature_set: FeatureSet
) -> tuple[PluginEntry, ...]:
    """Copy the plugins of ``feature_set`` that declare any of ``features`` into ``folder``;
    their entries."""
    entries = []
    for plugin in feature_set.plugins_of(features):
        file = f"plugin-{plugin.sha256[:16]}.py"
        (folder / file).write_bytes(plugin.source)
        used = tuple(n for n in plugin.features if n in set(features))
        # the files its features read for the refit
        reads = read_hashes(feature_set[n].reads for n in used)
        entries.append(PluginEntry(file, Path(plugin.label).name, plugin.sha256, used, reads))
    return tuple(entries)


def activate(folder: Path, manifest: Manifest, contents: Mapping[str, bytes]) -> FeatureSet:
    """The bundle's feature set: the catalog, its plugins' features (from their verified
    bytes) and its columns.

    Raises:
        BundleError: a file a plugin read is missing or differs; a plugin that does not run
            here, or no longer declares the manifest's features, or two that declare one name.
    """
    for entry in manifest.plugins:
        changed = changed_file(entry.reads)
        if changed is not None:
            raise BundleError(
                f"{changed[0]}: the file plugin {entry.name} reads is not the one {folder} was "
                f"exported with ({changed[1]}), so the features would not be those the model was "
                "tested on. Put the exported file back at that path, or export a model searched "
                "with this one."
            )
    feature_set = CATALOG
    try:
        for entry in manifest.plugins:
            source = contents[entry.file]
            feature_set = feature_set.with_plugin_source(source, f"{folder}/{entry.file}")
            declared = next(p.features for p in feature_set.plugins if p.source == source)
            lost = sorted(set(entry.features) - set(declared))
            if lost:
                raise BundleError(f"{entry.file} no longer declares {lost}")
        return feature_set.with_columns(manifest.columns)
    except XtuneError as exc:
        raise BundleError(
            f"{folder}: the bundle's own features cannot be loaded here: {exc}. Install the "
            "packages the plugin imports, or export the bundle again."
        ) from None
