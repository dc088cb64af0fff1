"""Issue 21 (hostile inputs): an ``--out`` never destroys what xtune did not write."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.test_cli import xtune
from xtune.features.sample import synthetic_bars
from xtune.outputs import FEATURES, PREDICTIONS, bundle_around


def _bars(folder: Path, name: str = "bars2.csv") -> Path:
    path = folder / name
    synthetic_bars(700).to_csv(path)
    return path


def test_features_build_never_writes_over_its_bars(tmp_path: Path) -> None:
    bars = _bars(tmp_path)
    before = bars.read_bytes()
    for out, flags in (("bars2.csv", []), ("./bars2.csv", ["--overwrite"]), (str(bars), [])):
        result = xtune("features", "build", "--data", "bars2.csv", "-f", "ret_1", "--out", out, *flags,
                       cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2 and "which this command reads" in result.stderr, out
        assert "Traceback" not in result.stderr
    assert bars.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars2.csv"]


@pytest.mark.parametrize("name", ["f.csv", "f.parquet"])
def test_features_build_replaces_only_its_own_frame_and_only_when_asked(
    tmp_path: Path, name: str
) -> None:
    bars, out = _bars(tmp_path), tmp_path / name
    other = tmp_path / "other.csv"
    _bars(tmp_path, "other.csv")  # bars: not a feature frame
    for flags in ([], ["--overwrite"]):
        foreign = xtune(
            "features", "build", "--data", str(bars), "-f", "ret_1", "--out", str(other), *flags
        )
        assert foreign.returncode == 2 and "xtune did not write" in foreign.stderr
    first = xtune("features", "build", "--data", str(bars), "-f", "ret_1", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert FEATURES.ours(out) and not PREDICTIONS.ours(out) and not FEATURES.ours(other)
    again = xtune(
        "features", "build", "--data", str(bars), "-f", "ret_1", "-f", "ret_3", "--out", str(out)
    )
    assert again.returncode == 2 and "pass --overwrite" in again.stderr
    both = [
        "features",
        "build",
        "--data",
        str(bars),
        "-f",
        "ret_1",
        "-f",
        "ret_3",
        "--out",
        str(out),
    ]
    assert xtune(*both, "--overwrite").returncode == 0
    frame = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out, index_col=0)
    assert list(frame.columns) == ["ret_1", "ret_3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bars2.csv", "other.csv", name])


def test_a_folder_is_inside_a_bundle_when_any_parent_holds_one(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    (bundle / "sub").mkdir(parents=True)
    (bundle / "SHA256SUMS").write_text("")
    assert bundle_around(bundle / "p.csv") is None  # no manifest.json: not a bundle
    (bundle / "manifest.json").write_text("{}")
    assert bundle_around(bundle / "p.csv") == bundle
    assert bundle_around(bundle / "sub" / "x" / "p.csv") == bundle
    assert bundle_around(tmp_path / "p.csv") is None
    assert bundle_around(bundle) is None  # the bundle itself: its own replace rule
