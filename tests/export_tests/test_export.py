"""Export -> bundle -> predict, as the trading PC runs it (no torch, no optuna)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from tests.cli import xtune
from tests.search_tests.test_report import _trial
from xtune.errors import XtuneError
from xtune.export import ExportError, export_bundle, pick_trial
from xtune.features import CATALOG, history_of, load_bars
from xtune.runtime import FORMAT_VERSION, BundleError, feature_matrix, load_bundle, predict
from xtune.runtime.bundle import SUMS, write_sums
from xtune.search import (
    load_study_config,
    open_study,
    pareto_front,
    read,
    resolve_storage,
    trial_inputs,
)
from xtune.settings import Settings

pytestmark = pytest.mark.slow

ENV = Settings()


@pytest.mark.parametrize("family", ["lstm", "xlstm"])
def test_export_writes_a_complete_verified_bundle(exports: dict, family: str) -> None:  # type: ignore[type-arg]
    bundle_dir, _, study = exports[family]
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    assert m.model.family == family and m.format_version == FORMAT_VERSION == 6
    assert m.reference is not None and m.caps is not None and m.caps.max_latency_ms == 50.0
    assert {m.reference.rows, m.reference.expected, m.reference.bars} <= set(m.files)
    assert m.history == history_of(m.feature_names) + m.window >= m.warmup + m.window
    assert (m.model.input, m.model.logits, m.model.returns) == ("x", "logits", "returns")
    assert m.parity_max_abs_diff <= 1e-4
    assert m.study.trial in [t.number for t in pareto_front(study)]
    for part in ("validation", "test"):
        assert {"accuracy", "loss", "baseline_accuracy", "sharpe"} <= set(m.metrics[part])
    assert m.metrics["test"]["samples"] > 0
    assert m.scaler["columns"] == list(m.feature_names)
    assert m.latency_ms["onnx_fp32"] > 0 and m.versions["onnxruntime"]
    int8_file = bundle_dir / "model.int8.onnx"
    if m.int8.used:  # kept: faster here and agreeing on 99%+ of test directions
        assert int8_file.exists() and m.model.file == int8_file.name
        assert m.int8.agreement is not None and m.int8.agreement >= 0.99
        assert m.latency_ms["onnx_int8"] is not None
        assert m.latency_ms["onnx_int8"] < m.latency_ms["onnx_fp32"]
    else:
        assert not int8_file.exists() and m.model.file == "model.onnx" and m.int8.reason
    assert set(m.files) == {p.name for p in bundle_dir.iterdir()} - {"manifest.json", SUMS}
    assert not list(bundle_dir.glob("*.pt"))  # no torch checkpoint travels to the trading PC


@pytest.mark.parametrize("family", ["lstm", "xlstm"])
def test_predict_round_trip(exports: dict, family: str, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle_dir, study_file, _ = exports[family]
    bundle = load_bundle(bundle_dir)
    bars = load_bars(study_file.parent / "bars.csv")
    frame = predict(bundle, bars)
    probs = frame[[c for c in frame.columns if "_p_" in c]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert frame.index[-1] == bars.index[-1]
    assert len(frame) == len(bars) - bundle.manifest.warmup - bundle.window + 1
    last = predict(bundle, bars, last=True)
    pd.testing.assert_frame_equal(last, frame.iloc[-1:], check_freq=False)
    # a live bot sees only the history up to now: the prediction for a past bar must not change
    earlier = predict(bundle, bars.head(len(bars) - 50), last=True)
    pd.testing.assert_frame_equal(
        earlier, frame.loc[[bars.index[-51]]], check_freq=False, atol=1e-6
    )


@pytest.mark.parametrize("family", ["lstm", "xlstm"])
def test_predict_features_equal_the_training_pipeline(exports: dict, family: str) -> None:  # type: ignore[type-arg]
    bundle_dir, study_file, study = exports[family]
    bundle = load_bundle(bundle_dir)
    trial = next(t for t in study.trials if t.number == bundle.manifest.study.trial)
    bars = load_bars(study_file.parent / "bars.csv")
    _, _, dataset = trial_inputs(
        read(trial), bars, CATALOG
    )  # the rows and scaler export trained on
    fold, _ = dataset.final()
    x_live, times = feature_matrix(bundle, bars)
    live = pd.DataFrame(x_live, index=times)
    train = pd.DataFrame(fold.x, index=dataset.times)
    common = train.index.intersection(live.index)
    assert len(common) == len(train)
    np.testing.assert_array_equal(live.loc[common].to_numpy(), train.loc[common].to_numpy())


def _blocked_env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with fake torch and optuna packages whose import fails."""
    block = tmp_path / "blocked"
    for name in ("torch", "optuna"):
        (block / name).mkdir(parents=True)
        (block / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not installed on the trading PC')\n"
        )
    return os.environ | {
        "PYTHONPATH": f"{block}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "COLUMNS": "200",
    }


def test_predict_runs_where_torch_and_optuna_cannot_be_imported(
    exports: dict, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    bundle_dir, study_file, _ = exports["xlstm"]
    env = _blocked_env(tmp_path)
    check = subprocess.run(
        [sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True
    )
    assert check.returncode != 0 and "not installed on the trading PC" in check.stderr
    out = tmp_path / "preds.csv"
    result = subprocess.run(
        [sys.executable, "-m", "xtune", "predict", str(bundle_dir), "--data", str(study_file.parent / "bars.csv"), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(out)) > 100
    last = subprocess.run(
        [sys.executable, "-m", "xtune", "predict", str(bundle_dir), "--data", str(study_file.parent / "bars.csv"), "--last"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert last.returncode == 0 and "h1_p_up" in last.stdout


def _copy(bundle_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(bundle_dir, target)
    return target


def test_a_tampered_or_incomplete_bundle_is_refused(exports: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle_dir, study_file, _ = exports["lstm"]
    bars = str(study_file.parent / "bars.csv")

    def run(folder: Path) -> subprocess.CompletedProcess[str]:
        return xtune("predict", str(folder), "--data", bars, columns=300)

    flipped = _copy(bundle_dir, tmp_path / "a")
    data = bytearray((flipped / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (flipped / "model.onnx").write_bytes(bytes(data))
    result = run(flipped)
    assert result.returncode == 2 and "model.onnx does not match its checksum" in result.stderr

    edited = _copy(bundle_dir, tmp_path / "b")
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["scaler"]["center"][0] += 1.0  # a quiet edit that would skew every prediction
    (edited / "manifest.json").write_text(json.dumps(manifest))
    assert "manifest.json does not match its checksum" in run(edited).stderr

    missing = _copy(bundle_dir, tmp_path / "c")
    (missing / "model.onnx").unlink()
    assert "model.onnx is missing" in run(missing).stderr

    future = _copy(bundle_dir, tmp_path / "d")
    manifest = json.loads((future / "manifest.json").read_text())
    manifest["format_version"] = 99
    (future / "manifest.json").write_text(json.dumps(manifest))
    write_sums(future, [p.name for p in future.iterdir() if p.name != SUMS])
    result = run(future)
    assert result.returncode == 2 and "format version 99 is not supported" in result.stderr

    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nowhere")


def test_bad_bars_for_predict_get_clear_errors(exports: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle_dir, study_file, _ = exports["lstm"]
    bars = pd.read_csv(study_file.parent / "bars.csv")
    short = tmp_path / "short.csv"
    bars.iloc[:30].to_csv(short, index=False)
    result = xtune("predict", str(bundle_dir), "--data", str(short), columns=300)
    assert (
        result.returncode == 2
        and "needs at least" in result.stderr
        and "longer history" in result.stderr
    )
    broken = tmp_path / "broken.csv"
    bars.loc[200, "close"] = float("nan")
    bars.to_csv(broken, index=False)
    result = xtune("predict", str(bundle_dir), "--data", str(broken), columns=300)
    assert result.returncode == 2 and "'close'" in result.stderr and "row 200" in result.stderr


def test_pick_rules_and_refusals() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_trial(0.1, 0.1, 0.60, 0.69))  # 0: best accuracy
    study.add_trial(_trial(0.2, 0.2, 0.55, 0.70))  # 1: dominated by 0, trained
    study.add_trial(_trial(0.3, 0.3, 0.58, 0.66))  # 2: the knee
    study.add_trial(_trial(0.4, 0.4, 0.52, 0.60))  # 3: best loss
    study.add_trial(_trial(0.5, 0.5, 0.90, 0.10, feasible=False))  # 4: over a cap
    assert [t.number for t in pareto_front(study)] == [0, 2, 3]
    assert pick_trial(study).number == 0
    assert pick_trial(study, rule="loss").number == 3
    assert pick_trial(study, rule="knee").number == 2
    with pytest.raises(ExportError, match="unknown pick rule"):
        pick_trial(study, rule="vibes")
    with pytest.raises(ExportError, match="not on the feasible Pareto front"):
        pick_trial(study, number=1)
    assert pick_trial(study, number=1, force=True).number == 1
    with pytest.raises(ExportError, match="not trained"):
        pick_trial(study, number=4, force=True)
    with pytest.raises(XtuneError, match="no trial 999"):
        pick_trial(study, number=999)
    empty = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ExportError, match="no feasible trained trial"):
        pick_trial(empty)


def test_export_refuses_other_bars_unless_asked(exports: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    _, study_file, _ = exports["lstm"]
    config = load_study_config(study_file)
    study = open_study(config.study.name, resolve_storage(config, None, ENV), ENV)
    other = tmp_path / "other.csv"
    frame = pd.read_csv(study_file.parent / "bars.csv")
    frame.iloc[:-1].to_csv(other, index=False)
    with pytest.raises(ExportError, match="not the bars trial"):
        export_bundle(config, pick_trial(study), tmp_path / "b1", ENV, data=str(other))
    assert not (tmp_path / "b1").exists()
    with pytest.raises(ExportError, match="already holds a bundle; pass --overwrite"):
        export_bundle(config, pick_trial(study), exports["lstm"][0], ENV)
