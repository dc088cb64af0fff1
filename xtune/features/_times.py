"""Time column -> UTC times: text, YYYYMMDD-style integers, or epoch numbers.

Integers are the trap: ``20040819`` read as epoch seconds is a date in 1970, and a file of
daily bars then "validates" as one-second bars. So integers that look like a calendar
layout are read as one, epochs must land in a plausible span, and anything else is refused.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from xtune.errors import DataError

# Epoch numbers must give times in this span; outside it they are not epochs (row counters,
# YYMMDD, ...). Older history: write ISO dates.
EPOCH_SPAN = (pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))

# Integer layouts by digit count. None of them overlaps a plausible epoch: 8 digits as
# seconds is 1970-73, 12 as milliseconds is 1973-2001 with a year that no layout parses
# (e.g. 6311), 14 as milliseconds is after 2286.
_LAYOUTS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
_LAYOUT_NAMES = {8: "YYYYMMDD", 12: "YYYYMMDDHHMM", 14: "YYYYMMDDHHMMSS"}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}

_FIX = (
    "Write ISO times like 2004-08-19 or 2004-08-19 14:00:00, integer dates like 20040819 "
    "(YYYYMMDD), or epoch seconds/milliseconds after 1990."
)


def first_true(mask: np.ndarray) -> int | None:
    """Position of the first True, or None: the first offending row of a check."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _shown(values: pd.Series, pos: int) -> str:
    """Row ``pos`` as a user wrote it: 20040819, not np.int64(20040819)."""
    value = values.iloc[pos]
    return repr(value.item() if isinstance(value, np.generic) else value)


def parse_times(values: pd.Series, column: str, label: str) -> pd.DatetimeIndex:
    """Parse a time column to a UTC DatetimeIndex at ns resolution.

    Raises:
        DataError: naming the column, first bad row and value, on a missing or unreadable
            time, or integers that are neither a date layout nor a plausible epoch.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        parsed = _parse_numbers(values, column, label)
    else:
        try:
            parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
        except (ValueError, TypeError):
            parsed = pd.to_datetime(values, utc=True, errors="coerce")
    if (pos := first_true(parsed.isna().to_numpy())) is not None:
        raise DataError(
            f"{label}: column {column!r} has an unreadable or missing time at row {pos}: "
            f"{_shown(values, pos)}. Use ISO times like 2024-01-31 14:00:00 or epoch seconds."
        )
    # One resolution (ns) whatever pandas inferred, so hashes and interval math agree.
    return pd.DatetimeIndex(parsed).as_unit("ns")


def _parse_numbers(values: pd.Series, column: str, label: str) -> pd.Series:
    """YYYYMMDD[HHMM[SS]] integers if they look like it, else epochs in EPOCH_SPAN.

    Missing values come back as NaT for the caller to report.
    """
    numbers = values.to_numpy(np.float64)
    finite = np.isfinite(numbers)
    if not finite.any():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    digits = _digit_count(numbers[finite])
    if digits is not None:
        text = pd.Series(
            np.where(finite, numbers, 0).astype(np.int64).astype(str), index=values.index
        )
        parsed = pd.to_datetime(
            text.where(finite), format=_LAYOUTS[digits], utc=True, errors="coerce"
        )
        # 8 digits are never a plausible epoch; 12/14 commit once the first row fits the layout.
        if digits == 8 or not pd.isna(parsed.iloc[int(np.argmax(finite))]):
            if (pos := first_true(parsed.isna().to_numpy() & finite)) is not None:
                raise DataError(
                    f"{label}: column {column!r} holds {_LAYOUT_NAMES[digits]} integers, but "
                    f"row {pos} ({_shown(values, pos)}) is not a valid date. Fix that row. {_FIX}"
                )
            return parsed
    return _parse_epochs(values, numbers, column, label)


def _digit_count(known: np.ndarray) -> int | None:
    """8, 12 or 14 when every value is a positive integer of that many digits, else None."""
    if not np.all(known == np.floor(known)):
        return None
    low, high = float(known.min()), float(known.max())
    for digits in _LAYOUTS:
        if 10 ** (digits - 1) <= low and high < 10**digits:
            return digits
    return None


def _parse_epochs(values: pd.Series, numbers: np.ndarray, column: str, label: str) -> pd.Series:
    """Epoch numbers, the unit picked from the magnitude (s ~1e9, ms ~1e12, ns ~1e18)."""
    top = float(np.nanmax(np.abs(numbers)))
    unit: Literal["s", "ms", "us", "ns"] = (
        "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
    )
    parsed = pd.to_datetime(values, unit=unit, utc=True, errors="coerce")
    start, end = EPOCH_SPAN
    outside = ((parsed < start) | (parsed >= end)).to_numpy()
    if (pos := first_true(outside)) is not None:
        raise DataError(
            f"{label}: column {column!r} holds numbers that are not dates: row {pos} "
            f"({_shown(values, pos)}) read as epoch {_UNIT_NAMES[unit]} is {parsed.iloc[pos]}, "
            f"outside {start.year}-{end.year}. {_FIX}"
        )
    return parsed
