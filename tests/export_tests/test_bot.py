"""examples/bot.py runs as the docs show: it warms up on the feed file, then acts on each bar the
platform appends, with the answers of batch `xtune predict`, where torch and optuna are absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.export_tests.test_export import _blocked_env
from xtune.export.consensus import write_consensus
from xtune.features import load_bars
from xtune.runtime import load_bundle, predict
from xtune.runtime.consensus import Consensus, load_consensus, predict_consensus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NEW = 3


def test_the_bot_follows_a_growing_csv_with_batch_predicts_answers(
    exports: dict[str, tuple[Path, Path, object]], tmp_path: Path
) -> None:
    bundle_dir, study_file, _ = exports["lstm"]
    lines = (study_file.parent / "bars.csv").read_text().splitlines(keepends=True)
    feed = tmp_path / "feed.csv"
    feed.write_text("".join(lines[:-NEW]))
    bot = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "bot.py"), str(bundle_dir), "--feed", str(feed),
         "--poll", "0.2", "--stop-after", str(NEW), "--threshold", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_blocked_env(tmp_path),
    )  # fmt: skip
    assert bot.stdout is not None
    first = bot.stdout.readline()  # warmed up on the bars already there
    with feed.open("a") as f:  # the platform closes three more bars
        f.writelines(lines[-NEW:])
    out, errors = bot.communicate(timeout=300)
    assert bot.returncode == 0, errors
    got = [first, *out.splitlines()]
    bars = load_bars(study_file.parent / "bars.csv")
    want = predict(load_bundle(bundle_dir), bars).iloc[-NEW - 1 :]
    assert len(got) == NEW + 1
    for line, (time, row) in zip(got, want.iterrows(), strict=True):
        stamp, action, p = line.split()
        assert pd.Timestamp(stamp) == time
        direction = row["h1_direction"]
        assert float(p.removeprefix("p=")) == pytest.approx(row[f"h1_p_{direction}"], abs=1e-4)
        assert action == {"up": "buy", "down": "sell"}.get(str(direction), "flat")


def test_the_bot_runs_a_consensus_folder_unwarned_with_its_answers(
    exports: dict[str, tuple[Path, Path, object]], tmp_path: Path
) -> None:
    pair = tuple(load_bundle(exports[f][0]) for f in ("lstm", "xlstm"))
    both = write_consensus(Consensus(None, "mean", 0.0, pair), tmp_path / "both")
    feed = exports["lstm"][1].parent / "bars.csv"
    command = [str(ROOT / "examples" / "bot.py"), str(both), "--feed", str(feed)]
    done = subprocess.run(
        [sys.executable, *command, "--stop-after", "0", "--threshold", "0.5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_blocked_env(tmp_path),
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no FutureWarning
    stamp, action, p = done.stdout.split()
    want = predict_consensus(load_consensus(both), load_bars(feed), last=True).iloc[-1]
    direction = str(want["h1_direction"])
    assert pd.Timestamp(stamp) == want.name and action == {"up": "buy", "down": "sell"}.get(
        direction, "flat"
    )
    assert float(p.removeprefix("p=")) == pytest.approx(
        want.get(f"h1_p_{direction}", 0.0), abs=1e-4
    )


def test_the_bot_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "bot.py"), str(tmp_path / "nope"),
                           "--feed", str(tmp_path / "none.csv"), "--stop-after", "1"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nope" in done.stderr
