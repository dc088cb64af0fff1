"""The live Predictor fed what it was not trained on: another interval, another market, two
threads, and a consensus whose members' features disagree about a bar."""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xtune.errors import DataError, FeatureError
from xtune.export.consensus import write_consensus
from xtune.features import CATALOG, Bars, load_bars
from xtune.features.build import feature_specs
from xtune.runtime import ConsensusPredictor, Predictor, load_bundle, predict
from xtune.runtime.bundle import MANIFEST, SUMS, sha256_file, write_sums
from xtune.runtime.consensus import Consensus
from xtune.runtime.feed import GAP_RUN, JUMP_FLOOR

pytestmark = pytest.mark.slow

Exports = dict[str, tuple[Path, Path, object]]
START = 1000  # bars given to predict_last before the bars fed one by one


def _bars(exports: Exports) -> Bars:
    return load_bars(exports["lstm"][1].parent / "bars.csv")


def _bar(bars: Bars, k: int, **change: object) -> dict[str, object]:
    return {"time": bars.index[k], **bars.frame.iloc[k].to_dict(), **change}


def _warm(exports: Exports, **kwargs: object) -> tuple[Predictor, Bars]:
    bars = _bars(exports)
    bot = Predictor(exports["lstm"][0], **kwargs)  # type: ignore[arg-type]
    bot.predict_last(bars.head(START))
    return bot, bars


def _rewritten(folder: Path, edit: dict[str, object] | None = None) -> Path:
    """``folder``'s manifest with ``edit`` applied and its checksums redone (it loads fine)."""
    raw = json.loads((folder / MANIFEST).read_text())
    raw.update(edit or {})
    (folder / MANIFEST).write_text(json.dumps(raw))
    write_sums(folder, [p.name for p in folder.iterdir() if p.name != SUMS])
    return folder


# ---------------------------------------------------------------- another interval
def test_bars_of_a_longer_interval_are_refused_after_a_few_gaps_in_a_row(exports: Exports) -> None:
    bot, bars = _warm(exports)  # an hourly model, fed 4-hourly bars
    ks = range(START + 3, START + 3 + 4 * GAP_RUN, 4)
    for k in ks[:-1]:  # a weekend, a missed bar: whole gaps pass, a run of them does not
        assert bot.update(_bar(bars, k)).time == bars.index[k]
    held = bot.bars
    with pytest.raises(DataError, match=rf"the last {GAP_RUN} bars each came more than one bar .*"
                       r"\(04:00:00, 04:00:00, 04:00:00, 04:00:00\).* every 01:00:00"):  # fmt: skip
        bot.update(_bar(bars, ks[-1]))
    assert bot.bars.equals(held)  # a refused bar is not kept
    with pytest.raises(DataError, match=f"the last {GAP_RUN} bars"):  # nor the next of that feed
        bot.update(_bar(bars, ks[-1] + 4))
    lenient = Predictor(exports["lstm"][0], allow_other_interval=True)
    lenient.predict_last(bars.head(START))
    for k in range(START + 3, START + 3 + 8 * GAP_RUN, 4):
        lenient.update(_bar(bars, k))


def test_gaps_that_are_not_in_a_row_are_refused_once_the_median_is_another_interval(
    exports: Exports,
) -> None:
    bot, bars = _warm(exports)  # bars 1 and 2 hours apart in turn: median 1.5 h
    k, refused = START, None
    for n in range(2 * bot.history):
        k += 1 + n % 2
        assert k < len(bars), "no bar refused"
        try:
            bot.update(_bar(bars, k))
        except DataError as exc:
            refused = str(exc)
            break
    assert refused is not None and "01:30:00 (median)" in refused, refused
    assert "predict_last() and `xtune predict` refuse such bars too" in refused
    frame = pd.concat([bot.bars, bars.frame.iloc[[k]]]).iloc[-bot.history :]
    with pytest.raises(DataError, match="bars every 01:30:00, but this model was trained on"):
        Predictor(exports["lstm"][0]).predict_last(frame)


def test_real_eurusd_bars_with_their_weekends_agree_with_batch_predict(exports: Exports) -> None:
    pytest.importorskip("backtesting")
    bars = load_bars("sample:eurusd")
    steps = np.diff(bars.index[-500:].asi8) / 3.6e12
    assert (steps > 1).sum() >= 3  # weekends among the bars fed one by one
    bundle_dir = exports["lstm"][0]
    batch = predict(load_bundle(bundle_dir), bars)
    bot = Predictor(bundle_dir)
    got = [bot.predict_last(bars.head(len(bars) - 500))]
    got += [bot.update(_bar(bars, k)) for k in range(len(bars) - 500, len(bars))]
    rows = pd.DataFrame([p.row() for p in got], index=pd.DatetimeIndex([p.time for p in got]))
    want = batch.loc[rows.index]
    numbers = [c for c in want.columns if not c.endswith("_direction")]
    assert np.abs(rows[numbers].to_numpy(float) - want[numbers].to_numpy(float)).max() <= 1e-6


# ---------------------------------------------------------------- another market
def test_a_bar_of_another_market_is_refused_unless_the_jump_is_said_to_be_real(
    exports: Exports, tmp_path: Path
) -> None:
    bot, bars = _warm(exports)
    close = bars.frame["close"].to_numpy()
    recorded = load_bundle(exports["lstm"][0]).manifest.data.max_log_move
    assert recorded == pytest.approx(np.abs(np.diff(np.log(close))).max())
    assert 0 < recorded < JUMP_FLOOR / 5  # so the floor is what the test below meets
    prices = {c: float(bars.frame[c].iloc[START]) * 136 for c in ("open", "high", "low", "close")}
    other = _bar(bars, START, **prices)
    held = bot.bars
    with pytest.raises(DataError, match=rf"bar at {re.escape(str(bars.index[START]))}: close .* log move of 4\.9"
                       r"\d .* over the limit of 0\.1 .*allow_jump=True\) if the move is real"):  # fmt: skip
        bot.update(other)
    assert bot.bars.equals(held)
    last = float(held["close"].iloc[-1])
    up = last * np.exp(0.9 * JUMP_FLOOR)  # under the floor: taken
    near = {"open": last, "high": up, "low": last, "close": up}
    assert bot.update(_bar(bars, START, **near)).time == bars.index[START]
    assert (
        bot.update(_bar(bars, START + 1, **prices), allow_jump=True).time == bars.index[START + 1]
    )
    old = shutil.copytree(exports["lstm"][0], tmp_path / "old")  # a bundle that records no move
    raw = json.loads((old / MANIFEST).read_text())
    del raw["data"]["max_log_move"]
    _rewritten(old, {"data": raw["data"]})
    assert load_bundle(old).manifest.data.max_log_move is None
    unchecked = Predictor(old)
    unchecked.predict_last(bars.head(START))
    assert unchecked.update(other).time == bars.index[START]  # no record, no check


def test_a_bar_of_another_symbol_is_refused(exports: Exports) -> None:
    bot, bars = _warm(exports, symbol="EURUSD")
    with pytest.raises(DataError, match=r"symbol 'USDJPY', but this Predictor was made for 'EUR"):
        bot.update(_bar(bars, START, symbol="USDJPY"))
    assert bot.update(_bar(bars, START, symbol="EURUSD")).time == bars.index[START]
    assert bot.update(_bar(bars, START + 1)).time == bars.index[START + 1]  # no symbol: not checked
    row = pd.DataFrame([_bar(bars, START + 2, symbol="GBPUSD")])
    with pytest.raises(DataError, match="symbol 'GBPUSD', but this Predictor was made for"):
        bot.update(row)
    follows, _ = _warm(exports)  # no symbol given: the first a bar carries
    follows.update(_bar(bars, START, symbol="EURUSD"))
    with pytest.raises(DataError, match="symbol 'GBPUSD', but the earlier bars were 'EURUSD'"):
        follows.update(pd.Series(_bar(bars, START + 1, symbol="GBPUSD")))
    mixed = bars.frame.iloc[:START].assign(symbol="EURUSD").reset_index()
    mixed.loc[START - 1, "symbol"] = "GBPUSD"
    with pytest.raises(DataError, match=r"symbol column names 2 markets \('EURUSD', 'GBPUSD'\)"):
        Predictor(exports["lstm"][0]).predict_last(mixed)


# ---------------------------------------------------------------- two threads
@pytest.fixture
def often_switching_threads() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave inside update(), where bars were lost
    yield
    sys.setswitchinterval(interval)


def test_two_threads_feeding_one_predictor_lose_no_bar(
    exports: Exports, often_switching_threads: None
) -> None:
    bot, bars = _warm(exports)
    todo = iter(range(START, START + 300))
    fetch = threading.Lock()
    answered: list[pd.Timestamp] = []
    refused: list[str] = []

    def feed() -> None:
        while True:
            with fetch:  # the bot fetches in time order; update() runs outside the lock
                k = next(todo, None)
            if k is None:
                return
            try:
                answered.append(bot.update(_bar(bars, k)).time)
            except DataError as exc:  # loud: a bar that lost the race to a newer one (and
                refused.append(str(exc))  # then, the holes it leaves: bars of another interval

    threads = [threading.Thread(target=feed) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = bot.bars.index
    assert held.is_monotonic_increasing and held.is_unique
    assert len(answered) + len(refused) == 300 and len(held) == bot.history
    assert all("not newer" in r or "more than one bar" in r for r in refused), set(refused)
    kept = sorted(answered)[-bot.history :]  # every answered bar, and only those, is held
    assert list(held[-len(kept) :]) == kept and set(held) <= set(answered) | set(bars.index[:START])


# ---------------------------------------------------------------- a consensus
PLUGIN = b"""
import numpy as np
from xtune.features import register


@register("log_volume_hostile", "volume", 0, "log volume: -inf on a zero-volume bar")
def log_volume_hostile(bars):
    return np.log(bars["volume"])
"""


def _with_plugin_feature(exports: Exports, to: Path) -> Path:
    """A copy of the LSTM bundle whose first feature is a plugin's log volume (the model's
    numbers do not fit it: this bundle exists to fail on a zero-volume bar)."""
    folder = shutil.copytree(exports["lstm"][0], to)
    features = CATALOG.with_plugin_source(PLUGIN, "hostile.py")
    (plugin,) = features.plugins
    name = plugin.features[0]
    file = f"plugin-{plugin.sha256[:16]}.py"
    (folder / file).write_bytes(PLUGIN)
    raw = json.loads((folder / MANIFEST).read_text())
    raw["features"][0] = feature_specs([name], features)[0]
    raw["scaler"]["columns"][0] = name
    raw["plugins"] = [{"file": file, "name": "hostile.py", "sha256": plugin.sha256,
                       "features": [name]}]  # fmt: skip
    raw["files"][file] = sha256_file(folder / file)
    return _rewritten(folder, raw)


def test_a_consensus_bar_is_taken_by_every_member_even_when_one_members_feature_fails(
    exports: Exports, tmp_path: Path
) -> None:
    member = _with_plugin_feature(exports, tmp_path / "plugin")
    pair = Consensus(None, "mean", 0.0, (load_bundle(member), load_bundle(exports["xlstm"][0])))
    bot = ConsensusPredictor(write_consensus(pair, tmp_path / "both"))
    alone = Predictor(exports["xlstm"][0])  # the second member on its own, fed the same bars
    bars = _bars(exports)
    bot.predict_last(bars.head(START))
    alone.predict_last(bars.head(START))
    failed = 0
    for k in range(START, START + 40):
        bar = _bar(bars, k, volume=0.0) if k == START else _bar(bars, k)
        want = alone.update(bar)
        try:
            got = bot.update(bar)
        except FeatureError as exc:
            assert "log_volume_hostile" in str(exc) and str(bars.index[START]) in str(exc)
            failed += 1
        else:
            assert got.members[1].row() == want.row()  # the second member has no hole
        a, b = (m.bars for m in bot.members)
        assert a.index[-1] == b.index[-1] == bars.index[k]  # in step
    assert failed == load_bundle(member).window  # while the bar is in the plugin's window
    held = [m.bars for m in bot.members]
    close = float(bars.frame["close"].iloc[START + 39]) * 2
    with pytest.raises(DataError, match="log move"):  # refused by every member: none keeps it
        bot.update(_bar(bars, START + 40, close=close, high=close))
    assert all(m.bars.equals(h) for m, h in zip(bot.members, held, strict=True))
