"""Hostile plugins: a trader's own features that hide a leak from the audit, that need more
history than they declare, that change the bars they are handed, or that return text. Each is
refused in one line naming the feature, or (the bars) comes to no harm."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.cli import xtune
from tests.search_tests.studies import write_study
from xtune.errors import FeatureError
from xtune.features import CATALOG, Bars, FeatureSet, build_features, fit_robust, load_bars
from xtune.features._audit import preflight
from xtune.features.build import latest_features
from xtune.features.sample import synthetic_bars

HEADER = "import numpy as np\nimport pandas as pd\nfrom xtune.features import register\n"

# Caches its values by the first bar, the common "compute the expensive indicator once" habit:
# on the full bars first, every later call on a truncated copy gets the full bars' values.
MEMO = """
_CACHE = {}


@register("my_memo", "returns", 0, "next bar's return, memoized by the first bar")
def my_memo(bars):
    key = bars.index[0]
    if key not in _CACHE or len(_CACHE[key]) < len(bars):
        _CACHE[key] = (bars["close"].shift(-1) / bars["close"] - 1.0).fillna(0.0)
    return _CACHE[key].iloc[: len(bars)]
"""

# The next bar's return only where ``WHEN`` holds (its last NaN filled, so warm-up passes).
SPARSE = """
@register("my_sparse", "returns", 1, "the last return; the next one where WHEN holds")
def my_sparse(bars):
    t = bars.index
    now = bars["close"].pct_change()
    ahead = (bars["close"].shift(-1) / bars["close"] - 1.0).fillna(0.0)
    return now.where(~(WHEN), ahead)
"""

# An EMA, declared the way the README and studies/my_features.py declare a rolling window.
EMA = """
@register("my_ema_gap", "trend", 19, "close over its 20-bar EMA, minus 1", span=20)
def my_ema_gap(bars):
    return bars["close"] / bars["close"].ewm(span=20, adjust=False).mean() - 1.0
"""

# A helper column on the bars frame, the common pandas habit.
MID = """
@register("my_mid_ret", "returns", 1, "return of the high-low midpoint")
def my_mid_ret(bars):
    bars["mid"] = (bars["high"] + bars["low"]) / 2
    return bars["mid"].pct_change()
"""

TEXT = """
@register("my_direction", "returns", 1, "up or down")
def my_direction(bars):
    up = bars["close"].diff() > 0
    return pd.Series(np.where(up, "up", "down"), index=bars.index)
"""

OLD_CUTS = (150, 615, 1230)  # the three fixed cuts (10%, 41%, 82%) on the fixture's 1,500 bars


def hostile_study(folder: Path, plugin: str, name: str) -> Path:
    """A study whose one candidate is ``name`` from ``plugin``, on the fixture's bars."""
    synthetic_bars(1500, seed=3).to_csv(folder / "bars.csv")
    (folder / "hostile.py").write_text(HEADER + plugin)
    path = write_study(folder)
    text = path.read_text()
    start, end = text.index("[features]"), text.index("[model]")
    own = (
        f'[features]\ngroups = []\nnames = ["{name}"]\nplugins = ["hostile.py"]\nmin = 1\nmax = 1\n'
    )
    path.write_text(text[:start] + own + "\n" + text[end:])
    return path


def audit_cli(study: Path) -> tuple[int, list[str]]:
    """``xtune features audit STUDY``: its exit code and the lines that name a failed check."""
    from xtune.cli import app

    result = CliRunner().invoke(app, ["features", "audit", str(study)], env={"COLUMNS": "300"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    failed = [line for line in result.output.splitlines() if line.startswith("my_")]
    return result.exit_code, failed


def test_a_memoizing_plugin_is_refused_though_its_cache_serves_the_full_values(
    tmp_path: Path,
) -> None:
    code, failed = audit_cli(hostile_study(tmp_path, MEMO, "my_memo"))
    assert code == 1 and len(failed) == 1, failed
    assert failed[0].startswith("my_memo: look-ahead: row ") and "on all bars" in failed[0]


@pytest.mark.parametrize(
    ("when", "what"),
    [
        ("t >= pd.Timestamp('2020-02-26 06:00', tz='UTC')", "a late leak: the last tenth"),
        ("t.hour == 13", "at one hour of the day"),
        ("(t.day_of_week == 2) & (t.hour == 9)", "on Wednesdays at 9:00"),
        ("t.day == 29", "on the 29th of the month"),
    ],
)
def test_a_late_or_sparse_leak_is_refused(tmp_path: Path, bars: Bars, when: str, what: str) -> None:
    t = bars.index
    leaky = t[:-1][eval(when, {"t": t, "pd": pd})[:-1]]  # the rows whose value sees the next
    assert not set(leaky) & {bars.index[t - 1] for t in OLD_CUTS}, what  # hidden from those
    code, failed = audit_cli(hostile_study(tmp_path, SPARSE.replace("WHEN", when), "my_sparse"))
    assert code == 1 and len(failed) == 1, (what, failed)
    assert failed[0].startswith("my_sparse: look-ahead: row "), what
    row = int(failed[0].split("look-ahead: row ")[1].split()[0])
    assert bars.index[row] in set(leaky), what


def test_an_ema_declared_like_a_rolling_window_is_refused_naming_the_memory_it_needs(
    tmp_path: Path, bars: Bars, eurusd: Bars
) -> None:
    features = CATALOG.with_plugins([_file(tmp_path, EMA)])
    with pytest.raises(FeatureError) as caught:
        preflight(["my_ema_gap"], bars, features)
    message = str(caught.value)
    assert "my_ema_gap: memory: " in message and "more than its memory 19" in message, message
    assert "\n" not in message
    needed = int(message.split("add memory=")[1].split()[0])
    assert needed > 19
    # the live path (the newest rows over history_of + rows bars) with the README's declaration
    # differs from training's values by more than the README's 1e-6 ...
    assert _live_gap(eurusd, features) > 1e-6
    # ... and with the memory the audit names it agrees, on other bars than the audit's
    declared = EMA.replace("span=20)", f"span=20, memory={needed})")
    features = CATALOG.with_plugins([_file(tmp_path, declared, "declared.py")])
    assert preflight(["my_ema_gap"], bars, features) is not None
    assert _live_gap(eurusd, features) <= 1e-6


def _live_gap(bars: Bars, features: FeatureSet, rows: int = 300) -> float:
    """Largest difference, in the feature's scale, between the live path and the full build."""
    full = build_features(bars, ["my_ema_gap"], feature_set=features, use_cache=False).to_numpy()
    live = latest_features(bars, ["my_ema_gap"], rows, feature_set=features).to_numpy()
    scale = fit_robust(full, ["my_ema_gap"]).scale
    return float((np.abs(live - full[-rows:]) / scale).max())


def _file(folder: Path, text: str, name: str = "hostile.py") -> Path:
    path = folder / name
    path.write_text(HEADER + text)
    return path


def test_a_plugin_that_adds_a_column_to_the_bars_leaves_the_study_replayable(
    tmp_path: Path,
) -> None:
    """The bars the search records (after the audit and the feature build) are the bars file's:
    export and replay compare those hashes with the file."""
    from xtune.search import load_study_config
    from xtune.search.record import DataRecord
    from xtune.search.run import prepare_inputs
    from xtune.settings import Settings

    config = load_study_config(hostile_study(tmp_path, MID, "my_mid_ret"))
    inputs = prepare_inputs(config, Settings())
    assert list(inputs.bars.frame.columns) == ["open", "high", "low", "close", "volume"]
    again = load_bars(config.data.source)
    assert DataRecord.of(inputs.bars).same(again), DataRecord.of(inputs.bars).difference(again)


def test_a_plugin_returning_text_is_one_line_naming_it_in_audit_and_search(
    tmp_path: Path,
) -> None:
    study = hostile_study(tmp_path, TEXT, "my_direction")
    code, failed = audit_cli(study)
    assert code == 1 and len(failed) == 1, failed
    assert "'my_direction'" in failed[0] and "values such as 'down'" in failed[0]
    unset = {k: None for k in os.environ if k.startswith("XTUNE_")}
    done = xtune("search", str(study), env=unset, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "'my_direction'" in line and "values such as 'down'" in line and "return numbers" in line


def test_a_column_is_named_as_unprovable_not_counted_as_a_pass(tmp_path: Path) -> None:
    from tests.search_tests.test_own_features import own_study
    from xtune.cli import app

    study = own_study(tmp_path)  # a causal plugin feature and a precomputed column
    result = CliRunner().invoke(app, ["features", "audit", str(study)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "my_signal: cannot prove it causal: a precomputed column, read from the bars file, " \
        "not computed" in lines, result.output  # fmt: skip
    assert lines[-1] == "1 of 2 features pass; 1 cannot be proven causal (above)"
