"""A study with the trader's own features: ``[features] plugins`` and ``columns``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli import xtune
from tests.features_tests.test_plugins import CAUSAL, LEAKY, plugin_file
from tests.search_tests.studies import write_study
from xtune.features import CATALOG
from xtune.features._cuts import own_cuts
from xtune.features.sample import synthetic_bars
from xtune.search import StudyError, load_study_config

OWN = """[features]
groups = []
names = ["my_range_z"]
plugins = ["my_features.py"]
columns = ["my_signal"]
min = 2
max = 2
"""


# the row before the first cut the audit makes on own_study's bars sees the next bar first
FIRST_ROW = own_cuts(synthetic_bars(1500, seed=9).index, warmup=0)[0] - 1


def own_study(folder: Path, plugin: str = CAUSAL, trials: int = 2, family: str = "lstm") -> Path:
    """A tiny study whose every trial uses a plugin feature and a precomputed column."""
    frame = synthetic_bars(1500, seed=9)
    frame["my_signal"] = np.tanh(np.log(frame["close"]).diff(3).fillna(0.0).to_numpy() * 50)
    frame.to_csv(folder / "bars.csv")
    plugin_file(folder, plugin)
    path = write_study(folder, trials=trials, families=f'["{family}"]', sampler="random")
    text = path.read_text()
    start = text.index("[features]")
    path.write_text(text[:start] + OWN + text[text.index("[model]", start) :])
    return path


def test_a_study_names_its_plugin_and_column_features_as_candidates(tmp_path: Path) -> None:
    config = load_study_config(own_study(tmp_path))
    assert config.features.candidates == ("my_range_z", "my_signal")
    assert config.features.columns == ("my_signal",)
    (plugin,) = config.features.plugins
    assert plugin.label == str(tmp_path / "my_features.py") and plugin.features == ("my_range_z",)
    assert config.features.feature_set["my_signal"].group == "column"
    assert "my_signal" not in CATALOG and "my_range_z" not in CATALOG


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace('["my_features.py"]', '["nope.py"]'), "nope.py: plugin file cannot be read"),
        (lambda t: t.replace('columns = ["my_signal"]', 'columns = ["rsi_14"]'),
         "columns: 'rsi_14' is already a feature of the catalog"),
        (lambda t: t.replace('names = ["my_range_z"]', 'names = ["my_rangez"]'),
         "unknown feature(s) ['my_rangez']"),
    ],
)  # fmt: skip
def test_a_bad_own_feature_in_the_study_file_is_one_clear_line(
    tmp_path: Path, change: object, expected: str
) -> None:
    path = own_study(tmp_path)
    path.write_text(change(path.read_text()))  # type: ignore[operator]
    with pytest.raises(StudyError) as caught:
        load_study_config(path)
    assert str(caught.value).startswith(f"{path}: [features]") and expected in str(caught.value)
    assert "\n" not in str(caught.value)


def _search(path: Path) -> subprocess.CompletedProcess[str]:
    unset = {k: None for k in os.environ if k.startswith("XTUNE_")}
    return xtune("search", str(path), env=unset, cwd=path.parent)


@pytest.mark.parametrize(
    ("plugin", "bars", "expected"),
    [
        (
            LEAKY.replace("my_tomorrow", "my_range_z"),
            None,
            f"my_range_z: look-ahead: row {FIRST_ROW} ",
        ),
        ("import numpy as np\nnp.nosuchthing\n", None, "does not import (line 2): AttributeError"),
        (CAUSAL, "drop", "no column(s) ['my_signal']"),
    ],
)
def test_a_search_refuses_a_leaky_broken_or_missing_own_feature_before_any_work(
    tmp_path: Path, plugin: str, bars: str | None, expected: str
) -> None:
    path = own_study(tmp_path, plugin)
    if bars == "drop":
        pd.read_csv(tmp_path / "bars.csv").drop(columns="my_signal").to_csv(
            tmp_path / "bars.csv", index=False
        )
    before = set(tmp_path.iterdir())
    done = _search(path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert expected in output and "Traceback" not in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
    # one line in all: no study header, no empty progress bar before it
    assert done.stdout == "" and done.stderr.strip() == errors[0], output
    assert set(tmp_path.iterdir()) == before  # no journal, no artifacts


@pytest.mark.slow
def test_a_bundle_with_own_features_predicts_the_same_values_where_torch_is_absent(
    tmp_path: Path,
) -> None:
    from tests.export_tests.test_export import _blocked_env
    from xtune.export import ExportError, export_bundle, pick_trial
    from xtune.features import build_features, load_bars
    from xtune.runtime import Predictor, load_bundle, predict
    from xtune.search import resolve_storage, run_search
    from xtune.settings import Settings

    env = Settings()
    config = load_study_config(own_study(tmp_path))
    study = run_search(config, resolve_storage(config, None, env), env)
    out = tmp_path / "bundle"
    export_bundle(config, pick_trial(study), out, env)
    edited = pd.read_csv(tmp_path / "bars.csv", index_col=0)
    edited.loc[edited.index[700], "my_signal"] += 0.25  # same OHLCV, one column value changed
    edited.to_csv(tmp_path / "edited.csv")
    with pytest.raises(ExportError, match="precomputed columns sha256"):
        export_bundle(
            config, pick_trial(study), tmp_path / "b2", env, data=str(tmp_path / "edited.csv")
        )
    bundle = load_bundle(out)
    m = bundle.manifest
    assert m.columns == ("my_signal",) and [p.name for p in m.plugins] == ["my_features.py"]
    assert m.plugins[0].features == ("my_range_z",) and m.plugins[0].file in m.files
    assert {f.name: f.origin for f in m.features} == {
        "my_range_z": f"plugin:{m.plugins[0].sha256}", "my_signal": "column"}  # fmt: skip
    bars = load_bars(tmp_path / "bars.csv", columns=m.columns)
    # the values the search trained on, from the study's features
    trained = build_features(bars, bundle.features, feature_set=config.features.feature_set)
    expected = predict(bundle, bars)
    bot = Predictor(out)  # the live path: bars with the column, one at a time
    bot.predict_last(bars.frame.iloc[:-30])
    for time, row in bars.frame.iloc[-30:].iterrows():
        live = bot.update({"time": time, **row.to_dict()})
        batch = expected.loc[time].filter(like="_p_").to_numpy(float)
        assert np.abs(np.array(list(live.probabilities[1].values())) - batch).max() < 1e-6
    (tmp_path / "my_features.py").unlink()  # the trading PC has only the bundle
    script = (
        "import sys, numpy as np; from xtune.runtime import load_bundle, feature_matrix;"
        "from xtune.features import load_bars, compute_features;"
        "b = load_bundle(sys.argv[1]); bars = load_bars(sys.argv[2], columns=b.manifest.columns);"
        "np.save(sys.argv[3], compute_features(bars, b.features, feature_set=b.feature_set)"
        ".to_numpy())"
    )
    run = [
        sys.executable,
        "-c",
        script,
        str(out),
        str(tmp_path / "bars.csv"),
        str(tmp_path / "f.npy"),
    ]
    blocked = _blocked_env(tmp_path)
    done = subprocess.run(run, env=blocked, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    there = np.load(tmp_path / "f.npy")[len(bars) - len(trained) :]
    np.testing.assert_array_equal(there, trained.to_numpy())
    preds = tmp_path / "preds.csv"
    cli = [sys.executable, "-m", "xtune", "predict", str(out), "--data", str(tmp_path / "bars.csv"), "--out", str(preds)]  # fmt: skip
    done = subprocess.run(cli, env=blocked, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(preds, index_col=0)
    np.testing.assert_allclose(got.filter(like="_p_").to_numpy(),
                               expected.filter(like="_p_").to_numpy(), atol=1e-6)  # fmt: skip
    assert len(got) == len(expected) > 100
