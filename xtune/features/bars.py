"""OHLCV bars in: load CSV/Parquet/DataFrame, match column names, validate, summarize.

Every check runs before any work starts and fails with a :class:`~xtune.errors.DataError`
that names the source, the column, the first offending row and time, and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from xtune.errors import DataError
from xtune.features._formats import (
    PARQUET_EXTRA,
    REAL_VOLUME,
    TICK_VOLUME,
    TextLayout,
    numeric_fix,
    sniff_text,
    volume_column,
)
from xtune.features._times import first_true, parse_times

OHLCV = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")

# Values above this are not prices or volumes a model should see: one user's inputs reached
# 1e15 and wrecked training. Rescale (e.g. volume in thousands) before loading.
MAX_ABS_VALUE = 1e12

# Lower-cased, punctuation-stripped header -> canonical name. First match wins, so the
# plain names come first. Volume is picked apart (real volume unless all 0, else tick volume).
_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o", "open_price", "opening_price", "price_open", "first"),
    "high": ("high", "h", "high_price", "price_high", "max"),
    "low": ("low", "l", "low_price", "price_low", "min"),
    "close": ("close", "c", "close_price", "price_close", "close_last", "last", "price"),
    "volume": (*REAL_VOLUME, *TICK_VOLUME),
}
_TIME_NAMES = (
    "timestamp",
    "datetime",
    "date_time",
    "time",
    "date",
    "open_time",
    "ts",
    "gmt_time",
    "local_time",
    "time_utc",
)
_KNOWN = {a for aliases in _ALIASES.values() for a in aliases} | set(_TIME_NAMES)


def _norm(name: object) -> str:
    """'<CLOSE>', 'Close/Last', ' Adj Close ' -> 'close', 'close_last', 'adj_close'."""
    text = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower())
    return text.strip("_")


@dataclass(frozen=True)
class Bars:
    """Validated OHLCV bars: float64 columns open..volume on a sorted, unique UTC index.

    Build one with :func:`load_bars`; the constructor does not validate. ``notes`` says how the
    source was read where that is not plain (a MetaTrader layout, decimal commas, tick volume
    in place of an all-zero real volume); ``xtune data check`` prints them.
    """

    frame: pd.DataFrame
    source: str
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The extra numeric columns kept beside OHLCV (``load_bars(columns=...)``)."""
        return tuple(c for c in self.frame.columns if c not in OHLCV)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.frame.index)

    @cached_property
    def sha256(self) -> str:
        """Content hash of times and OHLCV values; the key of the feature cache and of trial
        records (extra columns are hashed apart, by the cache key of features that read them)."""
        digest = hashlib.sha256()
        digest.update(self.index.asi8.tobytes())
        digest.update(np.ascontiguousarray(self.frame[list(OHLCV)].to_numpy(np.float64)).tobytes())
        return digest.hexdigest()

    @cached_property
    def columns_sha256(self) -> str:
        """Content hash of the extra columns, by name and value ("" without any)."""
        if not self.columns:
            return ""
        digest = hashlib.sha256(json.dumps(self.columns).encode())
        digest.update(
            np.ascontiguousarray(self.frame[list(self.columns)].to_numpy(np.float64)).tobytes()
        )
        return digest.hexdigest()

    def head(self, n: int) -> Bars:
        """The first ``n`` bars (used to prove that features never look ahead)."""
        return Bars(self.frame.iloc[:n], f"{self.source}[:{n}]", self.notes)


def load_bars(
    source: str | Path | pd.DataFrame, *, name: str | None = None, columns: Sequence[str] = ()
) -> Bars:
    """Load and validate OHLCV bars.

    Args:
        source: a CSV or Parquet path, ``"sample:NAME"`` (see :mod:`xtune.features.sample`),
            or a DataFrame. Column names match case-insensitively (``Open``, ``<CLOSE>``,
            ``tick_volume``...); time comes from a timestamp/date/datetime/time column or the
            index. Naive times are taken as UTC; aware times are converted to UTC.
        name: how errors refer to a DataFrame source.
        columns: extra numeric columns to keep beside OHLCV, by exact name (precomputed
            features, ``[features] columns``); each must be present and finite in every row.

    Raises:
        DataError: naming the file, column and first offending row, before any work starts.

    Example:
        >>> bars = load_bars("sample:synthetic")
        >>> list(bars.frame.columns)
        ['open', 'high', 'low', 'close', 'volume']
    """
    notes: tuple[str, ...] = ()
    if isinstance(source, pd.DataFrame):
        label = name or "<DataFrame>"
        raw = source
    elif isinstance(source, str) and source.startswith("sample:"):
        from xtune.features.sample import load_sample

        raw = load_sample(source.removeprefix("sample:"))
        label = str(source)
    else:
        path = Path(source)
        label = str(path)
        raw, notes = _read_file(path)
    frame, volume_note = _normalize(raw, label)
    validate_frame(frame, label)
    if columns:
        frame = _with_columns(frame, raw, tuple(columns), label)
    notes = (*notes, *filter(None, [volume_note, _zero_volume_note(frame)]))
    for note in notes:
        logging.getLogger("xtune").info("%s: %s", label, note)
    return Bars(frame, label, notes)


def _zero_volume_note(frame: pd.DataFrame) -> str:
    if len(frame) < 2 or frame["volume"].to_numpy().any():
        return ""
    return (
        "volume is 0 on every row: the volume features carry nothing and 'pvo' is undefined; "
        "leave the 'volume' group out of [features], or pass bars with (tick) volume"
    )


def _with_columns(
    frame: pd.DataFrame, raw: pd.DataFrame, columns: tuple[str, ...], label: str
) -> pd.DataFrame:
    """``frame`` plus the named raw columns, each numeric and finite (xtune fills nothing)."""
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        extra = [str(c) for c in raw.columns if _norm(c) not in _KNOWN]
        raise DataError(
            f"{label}: no column(s) {missing}, which [features] columns names (the columns "
            f"besides OHLCV and time here: {extra}). Add them to the bars, or remove them from "
            "[features] columns; a model trained on a column needs it in the live bars too."
        )
    out = frame.copy()
    for name in columns:
        values = pd.to_numeric(raw[name], errors="coerce").to_numpy(np.float64)
        check_column(name, values, raw[name].to_numpy(), frame.index, label)
        out[name] = values
    return out


def check_column(
    name: str, values: np.ndarray, shown: np.ndarray, index: pd.Index, label: str
) -> None:
    """A precomputed column (``values``, as read: ``shown``) is finite on every bar."""
    if (pos := first_true(~np.isfinite(values))) is not None:
        raise DataError(
            f"{label}: column {name!r} is {shown[pos]} at {_row_ref(index, pos)}, not a finite "
            "number. xtune never fills a precomputed column: drop the rows before its first "
            "value, or fix that row."
        )


def _read_file(path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The raw frame of a CSV/Parquet file, and the notes of how it was read."""
    if not path.exists():
        raise DataError(
            f"{path}: file not found. Pass the path of a CSV or Parquet file of OHLCV bars."
        )
    suffix = path.suffix.lower()
    is_parquet = suffix in (".parquet", ".pq")
    if not is_parquet and suffix not in (".csv", ".txt", ".tsv", ""):
        raise DataError(f"{path}: unknown file type {suffix!r}. Use .csv or .parquet.")
    if _is_blank(path):
        raise DataError(
            f"{path}: the file is empty. Pass a CSV or Parquet file with a header row "
            "(time, open, high, low, close, volume) and one bar per row."
        )
    layout = TextLayout(sep=None) if is_parquet else sniff_text(path)
    try:
        raw = pd.read_parquet(path) if is_parquet else layout.read(path)
    except ImportError:  # pandas found no Parquet engine (pyarrow is an extra)
        raise DataError(f"{path}: {PARQUET_EXTRA}.") from None
    except (ValueError, OSError, csv.Error, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: could not be read as {suffix or 'CSV'}: {exc}") from exc
    if not is_parquet:
        _refuse_truncated(path, raw)
    return raw, layout.notes


def _is_blank(path: Path) -> bool:
    """0 bytes, or only whitespace (a file created but never written)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    return not head.strip() and len(head) < 4096


def _refuse_truncated(path: Path, raw: pd.DataFrame) -> None:
    """Refuse a CSV whose last line was cut mid-write, before it changes the newest bar.

    The rule: the file does not end with a newline, and its last row leaves empty a column
    that the row before it filled (fewer fields than the header, or an empty field). A
    complete last row without a final newline is fine; a cut inside the last field of an
    otherwise complete row leaves no trace and cannot be seen.
    """
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        tail = handle.read()
    if raw.empty or tail.endswith((b"\n", b"\r")):
        return
    empty = raw.iloc[-1].isna().to_numpy()
    filled_before = raw.iloc[-2].notna().to_numpy() if len(raw) > 1 else np.ones_like(empty)
    if (col := first_true(empty & filled_before)) is not None:
        line = tail.rsplit(b"\n", 1)[-1].decode(errors="replace")
        end = line if len(line) <= 60 else "..." + line[-60:]
        raise DataError(
            f"{path}: row {len(raw) - 1} (the last line, {end!r}) has no value for "
            f"{str(raw.columns[col])!r} and the file does not end with a newline: it looks "
            "truncated (partially written). Wait for the writer to finish, or drop the last "
            "line, and retry."
        )


def _row_ref(index: pd.Index, pos: int) -> str:
    when = index[pos]
    return f"row {pos} (time {when})" if isinstance(when, pd.Timestamp) else f"row {pos}"


def _normalize(raw: pd.DataFrame, label: str) -> tuple[pd.DataFrame, str]:
    """Map columns to open..volume and the time to a UTC DatetimeIndex named 'time'; with the
    note of a volume read from the tick volume."""
    if raw.empty:
        raise DataError(f"{label}: no rows. Pass a file with a header row and OHLCV bars.")
    by_norm: dict[str, object] = {}
    for name in raw.columns:
        by_norm.setdefault(_norm(name), name)
    found: dict[str, object] = {}
    for canon, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in by_norm:
                found[canon] = by_norm[alias]
                break
    volume, note = volume_column(raw, by_norm)
    if volume is not None:
        found["volume"] = volume
    missing = [c for c in OHLCV if c not in found]
    if missing:
        raise DataError(
            f"{label}: missing column(s) {', '.join(missing)}; found {[str(c) for c in raw.columns]}. "
            "xtune needs open, high, low, close and volume (any case; aliases like o/h/l/c/v, "
            "tick_volume and MetaTrader's <OPEN> work). Rename the column(s) and retry."
        )
    frame = pd.DataFrame(index=raw.index)
    for canon in OHLCV:
        col = raw[found[canon]]
        values = pd.to_numeric(col, errors="coerce")
        if (pos := first_true((values.isna() & col.notna()).to_numpy())) is not None:
            raise DataError(
                f"{label}: column {found[canon]!r} ({canon}) is not numeric at row {pos}: "
                f"{col.iloc[pos]!r}. {numeric_fix(col.iloc[pos])}"
            )
        frame[canon] = values.astype(np.float64)
    frame.index = _time_index(raw, by_norm, label)
    frame.index.name = "time"
    return frame, note


def _time_index(raw: pd.DataFrame, by_norm: dict[str, object], label: str) -> pd.DatetimeIndex:
    names = [n for n in _TIME_NAMES if n in by_norm]
    if "date" in by_norm and "time" in by_norm:
        # MetaTrader-style separate <DATE> and <TIME> columns.
        values: pd.Series = (
            raw[by_norm["date"]].astype(str) + " " + raw[by_norm["time"]].astype(str)
        )
        column = f"{by_norm['date']}+{by_norm['time']}"
    elif names:
        values = raw[by_norm[names[0]]]
        column = str(by_norm[names[0]])
    elif isinstance(raw.index, pd.DatetimeIndex):
        values = raw.index.to_series()
        column = "<index>"
    else:
        raise DataError(
            f"{label}: no time column. Name it timestamp, date, datetime or time "
            "(or pass a DataFrame with a DatetimeIndex)."
        )
    return parse_times(values, column, label)


def validate_frame(frame: pd.DataFrame, label: str) -> None:
    """Check normalized bars; raise DataError at the first problem (cheapest checks first)."""
    index = pd.DatetimeIndex(frame.index)
    for col in OHLCV:
        values = frame[col].to_numpy()
        nonfinite = ~np.isfinite(values)
        if (pos := first_true(nonfinite)) is not None:
            raise DataError(
                f"{label}: column {col!r} has {int(nonfinite.sum())} NaN/inf value(s); first at "
                f"{_row_ref(index, pos)}. Drop or repair those bars (xtune never fills invented prices)."
            )
        if (pos := first_true(np.abs(values) > MAX_ABS_VALUE)) is not None:
            raise DataError(
                f"{label}: column {col!r} has a value of {values[pos]:.3g} at {_row_ref(index, pos)}, "
                f"above {MAX_ABS_VALUE:.0e}. Such magnitudes wreck training: check the units "
                "(e.g. volume in thousands, prices not in sub-units) or remove the bad rows."
            )
    for col in PRICES:
        values = frame[col].to_numpy()
        if (pos := first_true(values <= 0)) is not None:
            raise DataError(
                f"{label}: column {col!r} has a non-positive price {values[pos]} at "
                f"{_row_ref(index, pos)}. Prices must be > 0 (log returns); remove or fix the row."
            )
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    if (pos := first_true(high < low)) is not None:
        raise DataError(
            f"{label}: column 'high' is below 'low' at {_row_ref(index, pos)} "
            f"(high={high[pos]}, low={low[pos]}). Check that the columns are not swapped."
        )
    for col in ("open", "close"):
        values = frame[col].to_numpy()
        # A relative tolerance absorbs float rounding in exported files.
        tol = 1e-9 * np.abs(values)
        if (pos := first_true((values < low - tol) | (values > high + tol))) is not None:
            raise DataError(
                f"{label}: column {col!r} is outside [low, high] at {_row_ref(index, pos)} "
                f"({col}={values[pos]}, low={low[pos]}, high={high[pos]}). Fix that bar or "
                "check the column mapping."
            )
    volume = frame["volume"].to_numpy()
    if (pos := first_true(volume < 0)) is not None:
        raise DataError(
            f"{label}: column 'volume' is negative ({volume[pos]}) at {_row_ref(index, pos)}. "
            "Volume must be >= 0; fix or remove the row."
        )
    steps = np.diff(index.asi8)
    if (pos := first_true(np.concatenate([[False], steps < 0]))) is not None:
        raise DataError(
            f"{label}: times are not sorted: {_row_ref(index, pos)} comes before the previous row "
            f"({index[pos - 1]}). Sort the bars by time (oldest first); xtune never reorders them "
            "for you, because a shuffled series is how validation starts to lie."
        )
    if (pos := first_true(np.concatenate([[False], steps == 0]))) is not None:
        raise DataError(
            f"{label}: duplicate time at {_row_ref(index, pos)} (same as row {pos - 1}). "
            "Remove duplicate bars (e.g. overlapping exports) so each time appears once."
        )
