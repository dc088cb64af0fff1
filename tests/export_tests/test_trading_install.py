"""The trading PC's install as the docs give it: a wheel built here, installed with its runtime
extra in a fresh virtual environment without torch, optuna or pyarrow, runs `xtune predict`;
without onnxruntime, predict names the extra in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_without_onnxruntime_predict_names_the_runtime_extra(
    exports: dict[str, tuple[Path, Path, object]], tmp_path: Path
) -> None:
    bundle_dir, study_file, _ = exports["lstm"]
    block = tmp_path / "blocked" / "onnxruntime"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    env = os.environ | {
        "PYTHONPATH": f"{block.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    }
    done = subprocess.run([sys.executable, "-m", "xtune", "predict", str(bundle_dir), "--data",
                           str(study_file.parent / "bars.csv"), "--last"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "runtime extra" in lines[0], done.stderr


def test_a_wheel_with_the_runtime_extra_predicts_in_a_fresh_venv(
    exports: dict[str, tuple[Path, Path, object]], tmp_path: Path
) -> None:
    bundle_dir, study_file, _ = exports["lstm"]
    dist, venv = tmp_path / "dist", tmp_path / "trading"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    (wheel,) = dist.glob("xtune-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # nothing of this checkout's environment: the trading PC has only what the wheel installs
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[runtime]"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
                         check=False)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-2000:]
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import importlib.util as u; print(*(u.find_spec(m) for m in ('torch', 'optuna', 'pyarrow')))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=True)  # fmt: skip
    assert probe.stdout.split() == ["None"] * 3  # none is installed there
    done = subprocess.run([str(venv / "bin" / "xtune"), "predict", str(bundle_dir), "--data",
                           str(study_file.parent / "bars.csv"), "--last"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "h1_p_up" in done.stdout
