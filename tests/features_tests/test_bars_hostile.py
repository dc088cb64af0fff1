"""Files that look fine but are not: integer dates, a half-written last line, empty files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_cli import xtune
from xtune.errors import DataError
from xtune.features import load_bars, summarize
from xtune.features.sample import synthetic_bars


@pytest.fixture
def daily() -> pd.DataFrame:
    """200 daily bars from 2020-01-01, as a frame with a DatetimeIndex."""
    return synthetic_bars(200, seed=3, freq="1D")


def _with_times(frame: pd.DataFrame, times: object) -> pd.DataFrame:
    raw = frame.reset_index(drop=True)
    raw.insert(0, "Date", times)
    return raw


def _refusal(source: Path | pd.DataFrame) -> str:
    with pytest.raises(DataError) as err:
        load_bars(source, name="bars")
    message = str(err.value)
    assert "\n" not in message
    return message


# --- integer times ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["%Y%m%d", "%Y%m%d%H%M", "%Y%m%d%H%M%S"])
def test_yyyymmdd_integer_dates_are_read_as_dates_not_1970_epochs(
    tmp_path: Path, daily: pd.DataFrame, layout: str
) -> None:
    path = tmp_path / "daily.csv"
    _with_times(daily, daily.index.strftime(layout).astype(np.int64)).to_csv(path, index=False)
    bars = load_bars(path)
    assert bars.index.equals(daily.index)
    assert summarize(bars).interval == pd.Timedelta("1D")


def test_invalid_yyyymmdd_row_is_named(daily: pd.DataFrame) -> None:
    dates = daily.index.strftime("%Y%m%d").astype(np.int64).to_numpy().copy()
    dates[17] = 20200231
    message = _refusal(_with_times(daily, dates))
    for word in ("'Date'", "YYYYMMDD", "row 17", "20200231", "not a valid date"):
        assert word in message, f"{word!r} not in: {message}"


@pytest.mark.parametrize(
    "case", ["row_counter", "yymmdd", "negative", "seconds_before_1990", "fractional_yyyymmdd"]
)
def test_integers_that_would_give_a_1970_span_are_refused(daily: pd.DataFrame, case: str) -> None:
    n = len(daily)
    times = {
        "row_counter": np.arange(n),
        "yymmdd": daily.index.strftime("%y%m%d").astype(np.int64),
        "negative": -np.arange(n) - 1,
        "seconds_before_1990": np.arange(n) * 86_400 + 500_000_000,
        "fractional_yyyymmdd": daily.index.strftime("%Y%m%d").astype(np.int64) + 0.5,
    }[case]
    message = _refusal(_with_times(daily, times))
    for word in ("bars:", "'Date'", "row 0", "not dates", "epoch seconds", "ISO", "20040819"):
        assert word in message, f"{word!r} not in: {message}"


@pytest.mark.parametrize("factor", [10**9, 10**6, 10**3, 1], ids=["s", "ms", "us", "ns"])
def test_plausible_epochs_still_load(frame: pd.DataFrame, factor: int) -> None:
    since_1991 = frame.index - (frame.index[0] - pd.Timestamp("1991-01-01", tz="UTC"))
    raw = _with_times(frame, since_1991.as_unit("ns").asi8 // factor)
    assert load_bars(raw).index.equals(since_1991)


def test_cli_data_check_reads_yyyymmdd_as_daily_bars_and_refuses_row_counters(
    tmp_path: Path,
) -> None:
    daily = synthetic_bars(1000, seed=3, freq="1D")
    dates = tmp_path / "yyyymmdd.csv"
    _with_times(daily, daily.index.strftime("%Y%m%d").astype(np.int64)).to_csv(dates, index=False)
    result = xtune("data", "check", "--data", str(dates), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert '"start": "2020-01-01T00:00:00+00:00"' in result.stdout
    assert '"interval": "1 days 00:00:00"' in result.stdout

    counter = tmp_path / "counter.csv"
    _with_times(daily, np.arange(len(daily))).to_csv(counter, index=False)
    result = xtune("data", "check", "--data", str(counter))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert str(counter) in message and "'Date'" in message and "row 0" in message


# --- a last line cut mid-write ----------------------------------------------------------------


def _csv_text(frame: pd.DataFrame, extra: bool = False) -> str:
    raw = frame.rename_axis("timestamp")
    if extra:
        raw = raw.assign(adj_close=raw["close"])
    return raw.to_csv()


@pytest.mark.parametrize(
    "case, column",
    [
        ("cut_mid_close", "volume"),  # fewer fields than the header
        ("cut_after_comma", "volume"),  # every field there, the last one empty
        ("cut_mid_time", "open"),
        ("cut_before_optional_column", "adj_close"),  # volume may be cut: still refused
    ],
)
def test_truncated_last_line_is_refused(
    tmp_path: Path, frame: pd.DataFrame, case: str, column: str
) -> None:
    text = _csv_text(frame, extra=case == "cut_before_optional_column").rstrip("\n")
    body, last = text.rsplit("\n", 1)
    fields = last.split(",")
    cut = {
        "cut_mid_close": ",".join(fields[:5])[:-3],
        "cut_after_comma": ",".join(fields[:5]) + ",",
        "cut_mid_time": fields[0][:13],
        "cut_before_optional_column": ",".join(fields[:6])[:-2],
    }[case]
    path = tmp_path / "live.csv"
    path.write_text(f"{body}\n{cut}")
    message = _refusal(path)
    for word in (str(path), f"row {len(frame) - 1}", f"'{column}'", "truncated", "last line"):
        assert word in message, f"{word!r} not in: {message}"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_complete_last_row_without_final_newline_is_accepted(
    tmp_path: Path, frame: pd.DataFrame, newline: str
) -> None:
    path = tmp_path / "bars.csv"
    path.write_bytes(_csv_text(frame).rstrip("\n").replace("\n", newline).encode())
    pd.testing.assert_frame_equal(load_bars(path).frame, load_bars(frame).frame, check_freq=False)


def test_optional_columns_left_empty_are_not_called_truncated(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    # Every row ends with a separator (an always-empty column), no final newline.
    always_empty = tmp_path / "trailing_separator.csv"
    always_empty.write_text(
        "\n".join(line + "," for line in _csv_text(frame).rstrip("\n").split("\n"))
    )
    assert len(load_bars(always_empty)) == len(frame)
    # The newest row lacks an optional value but the line is complete.
    newest_empty = tmp_path / "newest_adj_empty.csv"
    newest_empty.write_text(_csv_text(frame, extra=True).rstrip("\n").rsplit(",", 1)[0] + ",\n")
    assert len(load_bars(newest_empty)) == len(frame)


# --- empty files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("empty.csv", b"", ["empty", "header row"]),
        ("blank.csv", b"\n \n", ["empty", "header row"]),
        ("header_only.csv", b"timestamp,open,high,low,close,volume\n", ["no rows"]),
        ("header_only_no_newline.csv", b"timestamp,open,high,low,close,volume", ["no rows"]),
        ("empty.parquet", b"", ["empty", "header row"]),
    ],
)
def test_empty_bars_file_is_refused_in_one_line(
    tmp_path: Path, name: str, content: bytes, words: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    message = _refusal(path)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


# --- layouts: no header row, decimal commas, a volume of zeros -----------------------------------


@pytest.mark.parametrize(
    "case, sep, decimal",
    [("iso_times", ",", "."), ("decimal_commas", ";", ","), ("epoch_seconds", "\t", ".")],
)
def test_a_file_without_header_row_is_told_so(
    tmp_path: Path, frame: pd.DataFrame, case: str, sep: str, decimal: str
) -> None:
    raw = (
        frame.reset_index()
        if case != "epoch_seconds"
        else frame.set_index(frame.index.asi8 // 10**9)
    )
    path = tmp_path / f"{case}.csv"
    raw.to_csv(path, sep=sep, decimal=decimal, header=False, index=case == "epoch_seconds")
    message = _refusal(path)
    for word in (str(path), "no header row", "the first line is data", "time,open,high,low,close,volume",
                 "MetaTrader 4"):  # fmt: skip
        assert word in message, f"{word!r} not in: {message}"
    assert "missing column" not in message


def test_one_row_with_a_decimal_comma_among_points_is_named_with_the_fix(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    lines = frame.rename_axis("time").to_csv(sep=";", float_format="%.5f").split("\n")
    lines[701] = lines[701].replace(".", ",")  # row 700 (line 0 is the header)
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines))
    message = _refusal(path)
    for word in (str(path), "row 700", "not numeric", "one decimal mark", "1,07160 throughout"):
        assert word in message, f"{word!r} not in: {message}"
    assert "Remove thousands separators" not in message


def test_a_volume_of_zeros_is_noted_with_the_features_it_breaks(frame: pd.DataFrame) -> None:
    bars = load_bars(frame.assign(volume=0.0))
    assert len(bars.notes) == 1 and "volume is 0 on every row" in bars.notes[0]
    assert "'pvo'" in bars.notes[0] and "'volume' group" in bars.notes[0]
    assert load_bars(frame).notes == ()
