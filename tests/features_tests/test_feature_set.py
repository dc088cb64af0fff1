"""Which features a call sees is a value it is given: loading a study or a bundle with its own
features leaves the catalog, and every module-level value of xtune, as they were."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import sys
from collections.abc import Mapping, MutableSequence, MutableSet
from pathlib import Path

import numpy as np
import pytest

import xtune
from tests.features_tests.test_plugins import CAUSAL, plugin_file
from tests.search_tests.test_own_features import own_study
from xtune.errors import FeatureError
from xtune.features import CATALOG, Feature, FeatureSet, build_features, load_bars, register
from xtune.features._audit import preflight
from xtune.features.build import feature_specs
from xtune.runtime import load_bundle
from xtune.runtime.bundle import MANIFEST, sha256_file, write_sums
from xtune.runtime.manifest import (
    CapsEntry,
    DataEntry,
    FeatureEntry,
    Int8Entry,
    Manifest,
    ModelEntry,
    PluginEntry,
    ReferenceEntry,
    StudyEntry,
)
from xtune.search import load_study_config

Snapshot = dict[tuple[str, str], tuple[int, int | None]]


def import_everything() -> None:
    """Every module of the package (not ``__main__``, which runs the command line)."""
    for info in pkgutil.walk_packages(xtune.__path__, "xtune."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def module_globals() -> Snapshot:
    """(module, name) -> (id, length) of every module-level value of xtune; the length of
    the containers (dicts, lists, sets, mappings), None for the rest."""
    out: Snapshot = {}
    for name, module in list(sys.modules.items()):
        if name != "xtune" and not name.startswith("xtune."):
            continue
        for attr, value in vars(module).items():
            if attr.startswith("__"):
                continue
            sized = isinstance(value, Mapping | MutableSequence | MutableSet)
            out[(name, attr)] = (id(value), len(value) if sized else None)
    return out


def tiny_bundle(folder: Path, features: FeatureSet, names: tuple[str, ...]) -> Path:
    """A bundle of ``names`` of ``features`` as ``load_bundle`` verifies it: its plugin files,
    columns, manifest and checksums (its model file is never run here)."""
    folder.mkdir()
    files = {"model.onnx": b"never run", "rows.npy": b"", "expected.npy": b"", "bars.csv": b""}
    plugins = []
    for plugin in features.plugins_of(names):
        file = f"plugin-{plugin.sha256[:16]}.py"
        files[file] = plugin.source
        used = tuple(n for n in plugin.features if n in names)
        plugins.append(PluginEntry(file, Path(plugin.label).name, plugin.sha256, used))
    for file, data in files.items():
        (folder / file).write_bytes(data)
    manifest = Manifest(
        model=ModelEntry("model.onnx", "model.onnx", "lstm", "x", "logits", "returns"),
        features=tuple(FeatureEntry(**spec) for spec in feature_specs(names, features)),
        warmup=features.warmup_of(names),
        scaler={},
        window=4,
        horizons=(1,),
        classes=2,
        class_names=("down", "up"),
        dead_zone=0.0,
        return_scale=(1.0,),
        data=DataEntry("0" * 64, "bars.csv", 1500, ("a", "b"), True, 3600.0, ("a", "b")),
        study=StudyEntry("tiny", 0, {}, {}, 1),
        metrics={},
        latency_ms={},
        int8=Int8Entry(False),
        parity_max_abs_diff=0.0,
        versions={},
        files={file: sha256_file(folder / file) for file in files},
        created="now",
        history=features.history_of(names) + 4,
        reference=ReferenceEntry("rows.npy", "expected.npy", 1, "bars.csv"),
        caps=CapsEntry(10.0, 1.0, None),
        fee=0.0,
        plugins=tuple(plugins),
        columns=features.columns_of(names),
    )
    (folder / MANIFEST).write_text(manifest.to_json())
    write_sums(folder, [*files, MANIFEST])
    return folder


def test_loading_a_study_and_a_bundle_with_own_features_changes_no_module_global(
    tmp_path: Path,
) -> None:
    import_everything()
    before, catalog = module_globals(), list(CATALOG.items())
    config = load_study_config(own_study(tmp_path))
    features = config.features.feature_set
    names = config.features.candidates
    assert names == ("my_range_z", "my_signal") and set(names) <= set(features)
    bars = load_bars(config.data.source, columns=features.columns)
    assert preflight(names, bars, features) is not None  # a fresh run of the plugin per cut
    studied = build_features(bars, names, feature_set=features, cache_dir=tmp_path / "cache")
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle", features, names))
    assert bundle.feature_set.plugins[0].sha256 == features.plugins[0].sha256
    live = build_features(bars, bundle.features, feature_set=bundle.feature_set, use_cache=False)
    np.testing.assert_array_equal(live.to_numpy(), studied.to_numpy())
    sent = pickle.loads(pickle.dumps(config)).features.feature_set  # a spawned worker's
    assert list(sent) == list(features) and sent is not features  # run again from the bytes
    again = build_features(bars, names, feature_set=sent, use_cache=False)
    np.testing.assert_array_equal(again.to_numpy(), studied.to_numpy())
    after = module_globals()
    assert [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)] == []
    assert list(CATALOG.items()) == catalog  # the same names, the very same Feature objects
    assert not set(names) & set(CATALOG)


def test_two_feature_sets_hold_one_name_with_two_meanings_apart(
    tmp_path: Path, bars: xtune.features.Bars
) -> None:
    """Two bundles (consensus members) whose plugins both declare ``my_range_z``."""
    one = CATALOG.with_plugins([plugin_file(tmp_path, CAUSAL, "one.py")])
    doubled = CAUSAL.replace("return (r", "return 2.0 * (r")
    two = CATALOG.with_plugins([plugin_file(tmp_path, doubled, "two.py")])
    a = build_features(bars, ["my_range_z"], feature_set=one, use_cache=False)
    b = build_features(bars, ["my_range_z"], feature_set=two, use_cache=False)
    np.testing.assert_allclose(b.to_numpy(), 2.0 * a.to_numpy())
    with pytest.raises(FeatureError, match="'my_range_z' is already declared by plugin:"):
        one.with_plugins([tmp_path / "two.py"])  # within one set, a name means one thing


def test_register_outside_a_plugin_run_and_pickling_a_hand_built_set_are_refused() -> None:
    with pytest.raises(FeatureError, match=r"list the file in the study's \[features\] plugins"):
        register("my_feature", "returns", 0, "declared by an import")
    own = FeatureSet({**CATALOG, "mine": Feature("mine", "returns", 0, lambda b: b["close"])})
    assert own["mine"].group == "returns" and "mine" not in CATALOG
    with pytest.raises(TypeError, match="no other process can rebuild it"):
        pickle.dumps(own)
