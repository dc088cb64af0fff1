"""Hostile: a plugin that reads a data file while it computes, and plugins or files edited after
the search. The audit says it cannot prove such a feature; the feature cache, the trial record
and the bundle notice an edited file as they notice an edited plugin."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli import xtune as run_xtune
from tests.search_tests.studies import write_study
from xtune.features import CATALOG, Bars, audit, build_features
from xtune.features import reads as reads_module
from xtune.features.sample import synthetic_bars
from xtune.search.record import PluginRecord, TrialRecord

# A feature looked up by bar time in a file: truncating the bars cannot reveal what it holds.
READER = """
import pandas as pd

from xtune.features import register


@register("my_lookup", "calendar", 0, "a value looked up by bar time in a data file")
def my_lookup(bars):
    table = pd.read_csv(r"{data}", index_col=0, parse_dates=True)["value"]
    return table.reindex(bars.index).fillna(0.0)
"""

OWN = """[features]
groups = []
names = ["my_lookup", "ret_1"]
plugins = ["my_features.py"]
min = 2
max = 2
"""


def next_bar_returns(frame: pd.DataFrame, scale: float = 100.0) -> pd.DataFrame:
    """The hostile file: on each bar, the NEXT bar's return (a leak no truncation shows)."""
    value = (frame["close"].shift(-1) / frame["close"] - 1.0).fillna(0.0) * scale
    return pd.DataFrame({"value": value}, index=frame.index.rename("time"))


def reader_study(folder: Path, trials: int = 1) -> Path:
    """A tiny study on 1,500 bars whose plugin reads ``lookup.csv`` by bar time."""
    frame = synthetic_bars(1500, seed=9)
    frame.to_csv(folder / "bars.csv")
    next_bar_returns(frame).to_csv(folder / "lookup.csv")
    (folder / "my_features.py").write_text(READER.format(data=folder / "lookup.csv"))
    path = write_study(folder, trials=trials, sampler="random", epochs=1)
    text = path.read_text()
    start = text.index("[features]")
    path.write_text(text[:start] + OWN + text[text.index("[model]", start) :])
    return path


def xtune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in this process, in ``cwd`` (the feature cache: the test's own)."""
    return run_xtune(*args, cwd=cwd)


def one_error_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The command exited 2 with exactly one line on stderr holding every expected text."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    assert all(e in lines[0] for e in expected) and "Traceback" not in output, output
    return lines[0]


# ------------------------------------------------------------------ the audit: cannot prove
def test_the_audit_marks_a_plugin_that_reads_a_file_cannot_prove_in_one_line(
    tmp_path: Path,
) -> None:
    study = reader_study(tmp_path)
    done = xtune("features", "audit", str(study), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr  # like a column: no check failed
    data = str(tmp_path / "lookup.csv")
    lines = [line for line in done.stdout.splitlines() if line.startswith("cannot prove")]
    assert len(lines) == 1 and lines[0].startswith(f"cannot prove my_lookup: it reads {data} ")
    row = next(line for line in done.stdout.splitlines() if "my_lookup" in line and "│" in line)
    assert "cannot prove: reads lookup.csv" in row
    assert "ret_1" in done.stdout and done.stdout.count("cannot prove") == 2  # the cell, the line


def test_the_audit_report_names_the_file_and_leaves_the_catalog_and_imports_alone(
    tmp_path: Path, bars: Bars
) -> None:
    next_bar_returns(bars.frame).to_csv(tmp_path / "lookup.csv")
    plugin = _write(tmp_path / "my_features.py", READER.format(data=tmp_path / "lookup.csv"))
    features = CATALOG.with_plugins([plugin])
    report = audit(["ret_1", "my_lookup"], bars, feature_set=features)
    assert "my_lookup" not in CATALOG
    ret_1, lookup = report.features
    assert report.failures == ()  # the leak passes the look-ahead check: a lookup by time
    assert lookup.reads == (str(tmp_path / "lookup.csv"),)
    assert lookup.unproven == f"reads {tmp_path / 'lookup.csv'}"
    assert ret_1.reads == () and ret_1.unproven is None


def test_imports_and_the_plugins_own_source_are_not_data_files(tmp_path: Path) -> None:
    """A plugin that imports a helper module of its own while it computes (the import system
    reads the .py and writes the .pyc) and reads its own source is not marked."""
    (tmp_path / "my_helper_mod_prov.py").write_text("SCALE = 2.0\n")
    plugin = f"""
import sys
from pathlib import Path

from xtune.features import register


@register("my_ret_x2", "returns", 1, "twice the 1-bar return")
def my_ret_x2(bars):
    sys.path.insert(0, r"{tmp_path}")
    import my_helper_mod_prov  # imported here, on the first computation

    assert Path(__file__).read_text()  # its own source
    return bars["close"].pct_change() * my_helper_mod_prov.SCALE
"""
    study = reader_study(tmp_path)
    (tmp_path / "my_features.py").write_text(plugin)
    study.write_text(study.read_text().replace('"my_lookup"', '"my_ret_x2"'))
    done = xtune("features", "audit", str(study), cwd=tmp_path)
    assert done.returncode == 0 and "all 2 features pass" in done.stdout, done.stdout
    assert "cannot prove" not in done.stdout and "my_ret_x2" in done.stdout


# ------------------------------------------------------------------ the feature cache
def test_editing_the_file_a_plugin_reads_changes_the_cache_key_and_serves_new_values(
    tmp_path: Path, bars: Bars
) -> None:
    data = tmp_path / "lookup.csv"
    table = next_bar_returns(bars.frame)
    table.to_csv(data)
    plugin = _write(tmp_path / "my_features.py", READER.format(data=data))
    features = CATALOG.with_plugins([plugin])
    cache = tmp_path / "cache"

    def build() -> np.ndarray:
        frame = build_features(bars, ["my_lookup", "ret_1"], feature_set=features, cache_dir=cache)
        return frame["my_lookup"].to_numpy()

    def frames() -> int:
        return len(list((cache / "features").glob("*.parquet")))

    np.testing.assert_allclose(build(), table["value"].to_numpy()[1:])  # ret_1's warm-up
    (table * 2.0).to_csv(data)  # edited after the build: the same bars, the same plugin
    np.testing.assert_allclose(build(), 2.0 * table["value"].to_numpy()[1:])
    assert frames() == 2
    # the plugin loaded afresh (a new process) has read nothing yet: the cache's record of the
    # files it read
    features = CATALOG.with_plugins([plugin])
    np.testing.assert_allclose(build(), 2.0 * table["value"].to_numpy()[1:])
    assert frames() == 2  # unchanged file: a hit
    (table * 3.0).to_csv(data)
    features = CATALOG.with_plugins([plugin])
    np.testing.assert_allclose(build(), 3.0 * table["value"].to_numpy()[1:])
    assert frames() == 3


# ------------------------------------------------------------------ the trial record
def test_a_trial_records_each_plugin_and_the_files_it_read_and_older_trials_still_read() -> None:
    plugin = PluginRecord("my_features.py", "ab" * 32, ("my_lookup",), {"/d/lookup.csv": "cd" * 32})
    record = TrialRecord(status="running", plugins=(plugin,))
    assert TrialRecord.from_attrs(record.to_attrs()) == record
    assert TrialRecord.from_attrs(TrialRecord(plugins=()).to_attrs()).plugins == ()
    assert TrialRecord.from_attrs(TrialRecord(status="running").to_attrs()).plugins is None


# ------------------------------------------------------------------ after the search
@pytest.mark.slow
def test_a_plugin_or_its_file_edited_after_the_search_is_refused_by_export_replay_and_bundle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from xtune.export import export_bundle, pick_trial
    from xtune.runtime import BundleError, load_bundle
    from xtune.search import load_study_config, resolve_storage, run_search
    from xtune.search.record import read
    from xtune.settings import Settings

    env = Settings()
    study_file = reader_study(tmp_path)
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, env), env)
    assert "feature my_lookup reads " in caplog.text and "cannot prove" in caplog.text
    trial = pick_trial(study)
    data, plugin = tmp_path / "lookup.csv", tmp_path / "my_features.py"
    (recorded,) = read(trial).plugins or ()
    assert recorded.sha256 == config.features.plugins[0].sha256
    assert recorded.reads == {str(data): reads_module.file_sha256(str(data))}

    export_bundle(config, trial, tmp_path / "bundle", env)  # as searched: exported
    (entry,) = load_bundle(tmp_path / "bundle").manifest.plugins
    assert entry.reads == recorded.reads
    original = data.read_bytes()
    next_bar_returns(synthetic_bars(1500, seed=9), scale=50.0).to_csv(data)
    with pytest.raises(BundleError, match=f"^{re.escape(str(data))}: the file plugin my_features"):
        load_bundle(tmp_path / "bundle")  # the trading PC's file differs from the exported one
    edited_file = one_error_line(
        xtune("export", str(study_file), "--out", "b2", cwd=tmp_path), f"error: {data}: ", "sha256"
    )
    assert f"trial {trial.number} was searched with" in edited_file
    data.unlink()
    with pytest.raises(BundleError, match=r"\(missing\)"):
        load_bundle(tmp_path / "bundle")
    data.write_bytes(original)

    # the plugin edited into one that reads the next bar: no trial validated that code
    plugin.write_text(plugin.read_text().replace("reindex(bars.index)", "shift(-1).reindex(bars.index)"))  # fmt: skip
    for command in (["export", str(study_file), "--out", "b3"],
                    ["replay", str(study_file), "--trial", str(trial.number)]):  # fmt: skip
        line = one_error_line(xtune(*command, cwd=tmp_path), f"error: {plugin}: this plugin is not")
        assert f"trial {trial.number} was searched with" in line
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b3").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
