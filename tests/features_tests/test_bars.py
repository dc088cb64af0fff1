"""Loading: column naming, time handling, and one test per bad-input case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xtune.errors import DataError
from xtune.features import load_bars, summarize


def test_csv_parquet_and_dataframe_load_the_same_bars(
    tmp_path: Path, frame: pd.DataFrame, csv_file: Path
) -> None:
    parquet = tmp_path / "bars.parquet"
    frame.to_parquet(parquet)
    from_csv, from_pq, from_df = load_bars(csv_file), load_bars(parquet), load_bars(frame)
    pd.testing.assert_frame_equal(from_csv.frame, from_df.frame, check_freq=False)
    pd.testing.assert_frame_equal(from_pq.frame, from_df.frame, check_freq=False)
    assert from_csv.sha256 == from_pq.sha256 == from_df.sha256
    assert str(from_df.index.tz) == "UTC"


@pytest.mark.parametrize(
    "names",
    [
        {"open": "Open", "high": "HIGH", "low": "Low", "close": "Close", "volume": "Volume"},
        {
            "open": "<OPEN>",
            "high": "<HIGH>",
            "low": "<LOW>",
            "close": "<CLOSE>",
            "volume": "<TICKVOL>",
        },
        {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"},
        {
            "open": "Open Price",
            "high": "High Price",
            "low": "Low Price",
            "close": "Close/Last",
            "volume": "Vol",
        },
    ],
)
def test_common_column_namings(frame: pd.DataFrame, names: dict[str, str]) -> None:
    renamed = frame.rename(columns=names).reset_index().rename(columns={"time": "Date"})
    bars = load_bars(renamed)
    np.testing.assert_array_equal(bars.frame["close"], frame["close"])
    assert list(bars.frame.columns) == ["open", "high", "low", "close", "volume"]


def test_metatrader_split_date_and_time_columns(frame: pd.DataFrame) -> None:
    raw = frame.reset_index(drop=True)
    raw.insert(0, "<DATE>", frame.index.strftime("%Y.%m.%d"))
    raw.insert(1, "<TIME>", frame.index.strftime("%H:%M:%S"))
    bars = load_bars(raw)
    assert bars.index.equals(frame.index)


def metatrader_export(frame: pd.DataFrame, version: int, real_volume: bool = False) -> str:
    """``frame`` as MetaTrader writes it, CRLF line ends, 5-digit prices: version 4 is the
    history-center CSV (no header; date, minute, o, h, l, c, volume), version 5 the tab-separated
    bars export (``<DATE>``..``<SPREAD>``) whose ``<VOL>`` (real volume) is 0 for forex."""
    raw = pd.DataFrame({"<DATE>": frame.index.strftime("%Y.%m.%d"),
                        "<TIME>": frame.index.strftime("%H:%M" if version == 4 else "%H:%M:%S")})  # fmt: skip
    for col in ("open", "high", "low", "close"):
        raw[f"<{col.upper()}>"] = frame[col].to_numpy()
    raw["<TICKVOL>"] = frame["volume"].to_numpy(np.int64)
    if version == 4:
        return raw.to_csv(header=False, index=False, float_format="%.5f", lineterminator="\r\n")
    raw["<VOL>"] = raw["<TICKVOL>"] * 7 if real_volume else 0
    raw["<SPREAD>"] = 12
    return raw.to_csv(sep="\t", index=False, float_format="%.5f", lineterminator="\r\n")


@pytest.mark.parametrize("version, real_volume", [(4, False), (5, False), (5, True)])
def test_metatrader_exports_load_as_they_come(
    tmp_path: Path, frame: pd.DataFrame, version: int, real_volume: bool
) -> None:
    path = tmp_path / f"EURUSD_H1_mt{version}.csv"
    path.write_text(metatrader_export(frame, version, real_volume), newline="")
    bars = load_bars(path)
    assert bars.index.equals(frame.index)
    np.testing.assert_array_equal(bars.frame["close"], frame["close"].round(5))
    ticks = frame["volume"].to_numpy()
    np.testing.assert_array_equal(bars.frame["volume"], ticks * 7 if real_volume else ticks)
    notes = {
        (4, False): ("read as MetaTrader 4's history export: no header row; date, time, open, "
                     "high, low, close, volume",),
        (5, False): ("volume is read from '<TICKVOL>' (tick volume): '<VOL>' (real volume) is 0 "
                     "on every row",),  # <VOL> all 0 (forex): the tick volume, and it is said
        (5, True): (),
    }[version, real_volume]  # fmt: skip
    assert bars.notes == notes
    assert summarize(bars).notes == bars.notes


def test_semicolon_file_with_decimal_commas_is_read_with_them(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    path = tmp_path / "eu.csv"
    frame.rename_axis("Date").to_csv(path, sep=";", decimal=",", float_format="%.5f")
    assert "100,08124" in path.read_text()  # 1,07160-style prices
    bars = load_bars(path)
    np.testing.assert_array_equal(bars.frame["high"], frame["high"].round(5))
    assert bars.notes == (
        "numbers read with a decimal comma (1,5 = 1.5); columns separated by ';'",
    )


@pytest.mark.parametrize("unit, factor", [("s", 10**9), ("ms", 10**6)])
def test_epoch_times(frame: pd.DataFrame, unit: str, factor: int) -> None:
    raw = frame.reset_index(drop=True)
    raw["timestamp"] = frame.index.as_unit("ns").asi8 // factor
    assert load_bars(raw).index.equals(frame.index), unit


def test_aware_times_become_utc_and_naive_are_taken_as_utc(frame: pd.DataFrame) -> None:
    aware = frame.tz_convert("Europe/Berlin")
    assert load_bars(aware).index.equals(frame.index)
    naive = frame.tz_localize(None)
    assert load_bars(naive).index.equals(frame.index)


def test_summary_counts_gaps(frame: pd.DataFrame) -> None:
    holes = frame.drop(frame.index[[100, 101, 102, 500]])
    summary = summarize(load_bars(holes))
    assert summary.rows == len(frame) - 4
    assert summary.interval == pd.Timedelta("1h")
    assert summary.gaps == 2
    assert summary.largest_gap == pd.Timedelta("4h")
    assert summary.largest_gap_at == frame.index[103]


def _bad(frame: pd.DataFrame, case: str) -> tuple[pd.DataFrame, list[str]]:
    """Corrupt a copy of the frame; return it and the words the error must contain."""
    f = frame.copy()
    row, when = 700, str(frame.index[700])
    if case == "missing":
        return f.drop(columns="volume"), ["volume", "missing", "Rename"]
    if case == "non_numeric":
        f = f.astype({"close": object})
        f.iloc[row, f.columns.get_loc("close")] = "1,234.5"
        return f, ["'close'", "not numeric", f"row {row}", "thousands separators"]
    if case == "nan":
        f.iloc[row, f.columns.get_loc("high")] = np.nan
        return f, ["'high'", "NaN", f"row {row}", when, "repair"]
    if case == "inf":
        f.iloc[row, f.columns.get_loc("volume")] = np.inf
        return f, ["'volume'", "inf", f"row {row}", when]
    if case == "non_positive":
        f.iloc[row, f.columns.get_loc("low")] = 0.0
        return f, ["'low'", "non-positive", f"row {row}", when, "> 0"]
    if case == "high_below_low":
        f.iloc[row, f.columns.get_loc("high")] = f["low"].iloc[row] * 0.99
        return f, ["'high'", "below 'low'", f"row {row}", when, "swapped"]
    if case == "open_outside":
        f.iloc[row, f.columns.get_loc("open")] = f["high"].iloc[row] * 1.01
        return f, ["'open'", "outside [low, high]", f"row {row}", when]
    if case == "close_outside":
        f.iloc[row, f.columns.get_loc("close")] = f["low"].iloc[row] * 0.99
        return f, ["'close'", "outside [low, high]", f"row {row}", when]
    if case == "negative_volume":
        f.iloc[row, f.columns.get_loc("volume")] = -5.0
        return f, ["'volume'", "negative", f"row {row}", when]
    if case == "absurd_magnitude":
        f.iloc[row, f.columns.get_loc("volume")] = 3e15
        return f, ["'volume'", "3e+15", f"row {row}", "1e+12", "units"]
    if case == "duplicate_time":
        idx = f.index.to_list()
        idx[row] = idx[row - 1]
        f.index = pd.DatetimeIndex(idx, name="time")
        return f, ["duplicate time", f"row {row}", "Remove duplicate"]
    if case == "unsorted":
        idx = f.index.to_list()
        idx[row], idx[row + 1] = idx[row + 1], idx[row]
        f.index = pd.DatetimeIndex(idx, name="time")
        return f, ["not sorted", f"row {row + 1}", "Sort the bars"]
    if case == "bad_time":
        f = f.reset_index()
        f["time"] = f["time"].astype(str)
        f.loc[row, "time"] = "yesterday-ish"
        return f, ["'time'", f"row {row}", "yesterday-ish", "ISO"]
    if case == "no_time":
        return f.reset_index(drop=True), ["no time column", "timestamp"]
    raise AssertionError(case)


BAD_CASES = [
    "missing", "non_numeric", "nan", "inf", "non_positive", "high_below_low", "open_outside",
    "close_outside", "negative_volume", "absurd_magnitude", "duplicate_time", "unsorted",
    "bad_time", "no_time",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_refused_with_file_column_row_and_fix(
    tmp_path: Path, frame: pd.DataFrame, case: str
) -> None:
    bad, words = _bad(frame, case)
    path = tmp_path / f"{case}.csv"
    bad.to_csv(path, index=case not in ("bad_time", "no_time"))
    if case == "no_time":
        bad.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_bars(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_bars(tmp_path / "nope.csv")
    odd = tmp_path / "bars.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        load_bars(odd)


def test_unknown_sample_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match="synthetic, random_walk, eurusd, goog"):
        load_bars("sample:nasdaq")


def test_loading_does_not_modify_the_callers_frame(frame: pd.DataFrame) -> None:
    before = frame.copy()
    load_bars(frame.rename(columns=str.upper))
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(
    "time",
    [pd.Timestamp("2024-03-01 14:00"), pd.Timestamp("2024-03-01 15:00", tz="Europe/Berlin")],
)
def test_one_live_bar_loads_as_the_full_loader_loads_it(time: pd.Timestamp) -> None:
    from xtune.features.live_bar import load_bar

    bar = {"time": time, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15, "volume": 7}
    fast = load_bar(bar, name="update()")
    assert fast is not None
    pd.testing.assert_frame_equal(fast.frame, load_bars(pd.DataFrame([bar])).frame)
    assert load_bar({**bar, "time": "2024-03-01 14:00"}, name="x") is None  # text: full loader
    assert load_bar({**bar, "tick_volume": 3}, name="x") is None  # other keys: full loader
    with pytest.raises(DataError, match="'high' is below 'low'"):
        load_bar({**bar, "high": 0.9}, name="update()")
    with pytest.raises(DataError, match="'my_signal' is nan"):
        load_bar({**bar, "my_signal": float("nan")}, name="update()", columns=["my_signal"])
