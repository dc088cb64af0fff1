"""The trader's own features inside a bundle: plugin files written by export and run again on
load, and the precomputed columns the live bars must carry. Torch-free.

Export copies each plugin that declares one of the model's features into the bundle as
``plugin-<sha256[:16]>.py`` (hashed with every other file). :func:`activate` runs those
verified bytes when the bundle is opened, so the trading PC computes the very functions the
model was trained on, and checks that each still declares what the manifest lists.

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
from xtune.features.plugins import load_plugin_source, plugins_of, use_columns
from xtune.features.reads import changed_file, read_hashes
from xtune.runtime.manifest import Manifest, PluginEntry


def write_plugins(folder: Path, features: Sequence[str]) -> tuple[PluginEntry, ...]:
    """Copy the plugins that declare any of ``features`` into ``folder``; their entries."""
    entries = []
    for plugin in plugins_of(features):
        file = f"plugin-{plugin.sha256[:16]}.py"
        (folder / file).write_bytes(plugin.source)
        used = tuple(n for n in plugin.features if n in set(features))
        reads = read_hashes(plugin.origin, used)  # the files its features read for the refit
        entries.append(PluginEntry(file, Path(plugin.label).name, plugin.sha256, used, reads))
    return tuple(entries)


def activate(folder: Path, manifest: Manifest, contents: Mapping[str, bytes]) -> None:
    """Register the bundle's plugin features (from their verified bytes) and its columns.

    Raises:
        BundleError: a file a plugin read is missing or differs; a plugin that does not run
            here, or no longer declares the manifest's features, or a name already taken by
            another definition in this process.
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
    try:
        for entry in manifest.plugins:
            plugin = load_plugin_source(contents[entry.file], f"{folder}/{entry.file}")
            lost = sorted(set(entry.features) - set(plugin.features))
            if lost:
                raise BundleError(f"{entry.file} no longer declares {lost}")
        use_columns(manifest.columns)
    except XtuneError as exc:
        raise BundleError(
            f"{folder}: the bundle's own features cannot be loaded here: {exc}. Install the "
            "packages the plugin imports, or export the bundle again."
        ) from None
