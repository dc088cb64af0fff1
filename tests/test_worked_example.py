"""The docs' worked example, the trader's two-model setup on the real EURUSD sample, runs
as written: two searches, two exports, the consensus report and predict on the consensus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MARK = "<!-- worked example: tests/test_worked_example.py runs these lines as written -->"


def commands() -> list[str]:
    """The lines of the first bash block after the consensus page's marker, comments left out."""
    text = (ROOT / "docs" / "consensus.md").read_text()
    assert text.count(MARK) == 1, "docs/consensus.md lost the worked example's marker"
    block = text.split(MARK, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_worked_example_is_the_two_model_setup() -> None:
    lines = commands()
    assert all(line.startswith("xtune ") for line in lines)
    verbs = [line.split()[1] for line in lines]
    assert verbs == ["features", "search", "search", "export", "export", "consensus", "predict"]
    assert {"studies/eurusd_patterns.toml", "studies/eurusd_indicators.toml"} <= {
        word for line in lines for word in line.split()}  # fmt: skip


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("backtesting")  # the EURUSD sample ships with it
    shutil.copytree(ROOT / "studies", tmp_path / "studies",
                    ignore=lambda _, names: [n for n in names if not n.endswith((".toml", ".py"))])  # fmt: skip
    for name in ("eurusd_patterns.toml", "eurusd_indicators.toml"):
        # The lines as written, on the studies as written but for 2 epochs where they train up
        # to 30: what runs here is the chain of commands, not the models' quality.
        study = tmp_path / "studies" / name
        assert study.read_text().count("\nepochs = 30\n") == 1, name
        study.write_text(study.read_text().replace("\nepochs = 30\n", "\nepochs = 2\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTUNE_")}
    env |= {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "COLUMNS": "200", "NO_COLOR": "1", "XTUNE_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    outputs = []
    for line in commands():
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert "all 2 features pass" in outputs[0]
    a, b = (json.loads((tmp_path / "bundles" / x / "manifest.json").read_text()) for x in "ab")
    patterns = [f for f in a["features"] if f["group"] == "pattern"]
    assert len(patterns) == 6 and len(a["features"]) == 22 and len(b["features"]) == 5
    assert "consensus (unanimous)" in outputs[5] and "common test bars" in outputs[5]
    assert "h1_direction" in outputs[6] and "m2_h1_direction" in outputs[6]
