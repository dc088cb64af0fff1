"""The live bot's Predictor: bar by bar, the same answers as `xtune predict` on the full history."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.export_tests.test_export import _blocked_env
from xtune.errors import DataError
from xtune.features import Bars, history_of, load_bars
from xtune.runtime import Predictor, load_bundle, predict
from xtune.runtime.bundle import MANIFEST, SUMS, write_sums

pytestmark = pytest.mark.slow

Exports = dict[str, tuple[Path, Path, object]]
BARS = 500


def _bars(exports: Exports, family: str = "lstm") -> Bars:
    return load_bars(exports[family][1].parent / "bars.csv")


def _bar(bars: Bars, k: int) -> dict[str, object]:
    return {"time": bars.index[k], **bars.frame.iloc[k].to_dict()}


@pytest.mark.parametrize("family", ["lstm", "xlstm"])
def test_every_bar_equals_batch_predict_on_the_full_history(exports: Exports, family: str) -> None:
    bundle_dir = exports[family][0]
    bars = _bars(exports, family)
    batch = predict(load_bundle(bundle_dir), bars)  # every bar, features from the first bar on
    bot = Predictor(bundle_dir)
    start = len(bars) - BARS
    assert bot.history <= start - 100  # the batch path computed far more history than the bot
    first = bot.predict_last(bars.head(start))
    got = [first] + [bot.update(_bar(bars, k)) for k in range(start, len(bars))]
    assert len(bot.bars) == bot.history and bot.bars.index[-1] == bars.index[-1]
    rows = pd.DataFrame([p.row() for p in got], index=pd.DatetimeIndex([p.time for p in got]))
    want = batch.loc[rows.index]
    assert list(rows.columns) == list(want.columns) and len(rows) == BARS + 1
    numbers = [c for c in want.columns if not c.endswith("_direction")]
    diff = np.abs(rows[numbers].to_numpy(np.float64) - want[numbers].to_numpy(np.float64))
    assert diff.max() <= 1e-6, diff.max()
    probs = want[[c for c in numbers if "_p_" in c]].to_numpy()
    clear = np.sort(probs, axis=1)[:, -1] - np.sort(probs, axis=1)[:, -2] > 1e-6
    directions = [c for c in want.columns if c.endswith("_direction")]
    assert (rows.loc[clear, directions] == want.loc[clear, directions]).all().all()
    assert set(first.probabilities) == set(first.direction) == set(first.returns)


def test_update_refuses_a_bar_not_newer_or_at_another_interval(exports: Exports) -> None:
    bundle_dir = exports["lstm"][0]
    bars = _bars(exports)
    bot = Predictor(bundle_dir)
    bot.predict_last(bars.head(1000))
    last = _bar(bars, 999)
    with pytest.raises(DataError, match=r"not newer than the last bar"):
        bot.update(last)
    half = {**_bar(bars, 1000), "time": bars.index[999] + pd.Timedelta(minutes=30)}
    with pytest.raises(DataError, match=r"00:30:00 after the last bar .* come every 01:00:00"):
        bot.update(half)
    assert bot.bars.index[-1] == bars.index[999]  # a refused bar is not kept
    gap = {**_bar(bars, 1000), "time": bars.index[999] + pd.Timedelta(hours=3)}
    assert bot.update(gap).time == gap["time"]  # missed bars (a weekend) are whole intervals
    lenient = Predictor(bundle_dir, allow_other_interval=True)
    lenient.predict_last(bars.head(1000))
    assert lenient.update(half).time == half["time"]
    with pytest.raises(DataError, match="takes one bar, got 2"):
        bot.update(bars.frame.iloc[1001:1003])
    with pytest.raises(DataError, match="non-positive"):
        bot.update({**_bar(bars, 1001), "low": -1.0})
    assert lenient.update(bars.frame.iloc[[1001]]).time == bars.index[1001]  # a one-row frame


def test_too_short_a_history_is_refused_naming_the_bars_needed(exports: Exports) -> None:
    bundle_dir = exports["lstm"][0]
    bars = _bars(exports)
    bundle = load_bundle(bundle_dir)
    need = bundle.manifest.history
    assert need == history_of(bundle.features) + bundle.window
    with pytest.raises(DataError, match=f"needs at least {need}: .*longer history"):
        predict(bundle, bars.head(need - 1), last=True)
    predict(bundle, bars.head(need), last=True)
    bot = Predictor(bundle_dir)
    with pytest.raises(DataError, match=f"needs at least {need}"):
        bot.predict_last(bars.head(need - 1))
    with pytest.raises(DataError, match=f"1 bars, but this model needs at least {need}"):
        bot.update(_bar(bars, 0))
    assert len(bot.bars) == 1  # kept: a bot may warm up bar by bar
    for k in range(1, need - 1):
        with pytest.raises(DataError):
            bot.update(_bar(bars, k))
    assert bot.update(_bar(bars, need - 1)).time == bars.index[need - 1]


def test_a_version_2_bundle_still_predicts_with_the_catalogs_history(
    exports: Exports, tmp_path: Path
) -> None:
    old = tmp_path / "v2"
    shutil.copytree(exports["lstm"][0], old)
    raw = json.loads((old / MANIFEST).read_text())
    del raw["history"]
    raw["format_version"] = 2
    (old / MANIFEST).write_text(json.dumps(raw))
    write_sums(old, [p.name for p in old.iterdir() if p.name != SUMS])
    bundle = load_bundle(old)
    assert bundle.manifest.history is None
    bot = Predictor(old)
    assert bot.history == load_bundle(exports["lstm"][0]).manifest.history
    bars = _bars(exports)
    assert bot.predict_last(bars).row() == Predictor(exports["lstm"][0]).predict_last(bars).row()


def test_the_predictor_runs_where_torch_and_optuna_cannot_be_imported(
    exports: Exports, tmp_path: Path
) -> None:
    bundle_dir, study_file, _ = exports["xlstm"]
    script = (
        "import sys, pandas as pd\n"
        "from xtune.runtime import Predictor\n"
        f"bars = pd.read_csv({str(study_file.parent / 'bars.csv')!r})  # times as text\n"
        f"bot = Predictor({str(bundle_dir)!r})\n"
        "bot.predict_last(bars.iloc[:-3])\n"
        "for _, bar in bars.iloc[-3:].iterrows():\n"
        "    print(bot.update(bar.to_dict()).direction)\n"
        "assert 'torch' not in sys.modules and 'optuna' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=_blocked_env(tmp_path),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("{1: '") == 3
