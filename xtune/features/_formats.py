"""How a bars file is laid out, sniffed from its first lines before pandas reads it.

MetaTrader exports are read as they come: MetaTrader 4's history-center CSV (no header row:
date, time, open, high, low, close, volume) and MetaTrader 5's tab-separated export
(``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>``). A ``;``- or
tab-separated file whose numbers use a decimal comma (``1,07160``) is read with it. A file of
another layout without a header row is refused with the fix, not read with its first bar as
column names. Parquet needs the ``parquet`` extra (pyarrow), which the trading PC can do without.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xtune.errors import DataError

PARQUET_EXTRA = (
    "reading Parquet needs pyarrow, which this install lacks: install xtune with its parquet "
    'extra (pip install "xtune[parquet]", or pip install ".[parquet]" in a clone), or pass '
    "the bars as CSV"
)

# The columns of MetaTrader 4's history-center export, which has no header row.
MT4_COLUMNS = ("date", "time", "open", "high", "low", "close", "volume")

# Normalized volume headers: traded (real) volume first, then tick volume (price changes),
# which MetaTrader gives for instruments without real volume (forex, CFDs: real volume all 0).
REAL_VOLUME = ("volume", "vol", "v", "real_volume", "volume_traded")
TICK_VOLUME = ("tick_volume", "tickvol")

_HEAD_BYTES = 1 << 16
_SAMPLE_ROWS = 50
_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?")
_DATE_TIME = re.compile(
    r"(?:\d{1,4}[-./]\d{1,2}[-./]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"|\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)(?:Z|[+-]\d{2}:?\d{2})?"
)
_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")
_DECIMAL_POINT = re.compile(r"[-+]?\d*\.\d+")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MT4_DATE = re.compile(r"\d{4}\.\d{2}\.\d{2}")
_MT4_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2})?")


@dataclass(frozen=True)
class TextLayout:
    """How :func:`pandas.read_csv` reads a text file of bars, and what a user should know of it.

    Attributes:
        sep: the column separator; None lets pandas sniff it (a line without ``\\t``, ``;``, ``,``).
        decimal: ``"."``, or ``","`` for a file written with decimal commas.
        names: the column names of a file without a header row (MetaTrader 4's layout).
        notes: one line per reading choice that is not the plain CSV one.
    """

    sep: str | None
    decimal: str = "."
    names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def read(self, path: Path) -> pd.DataFrame:
        if self.names:
            return pd.read_csv(
                path,
                sep=self.sep,
                engine="python",
                decimal=self.decimal,
                header=None,
                names=list(self.names),
            )
        return pd.read_csv(path, sep=self.sep, engine="python", decimal=self.decimal)


def has_parquet() -> bool:
    """Whether pyarrow, the ``parquet`` extra that reads and writes Parquet, imports here."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def sniff_text(path: Path) -> TextLayout:
    """The layout of a CSV/TSV file of bars, from its first lines.

    Raises:
        DataError: the first line is data (no header row) and not MetaTrader 4's layout.
    """
    lines = _head_lines(path)
    if not lines:
        return TextLayout(sep=None)
    sep = next((s for s in ("\t", ";", ",") if s in lines[0]), None)
    if sep is None:
        return TextLayout(sep=None)
    first = _fields(lines[0], sep)
    headerless = len(first) > 1 and all(_is_data(f) for f in first if f)
    names: tuple[str, ...] = ()
    notes: list[str] = []
    if headerless:
        if not _is_mt4(first):
            shown = lines[0] if len(lines[0]) <= 60 else lines[0][:57] + "..."
            raise DataError(
                f"{path}: no header row: the first line is data ({shown!r}); add a header line "
                "`time,open,high,low,close,volume` (or the MetaTrader 4 layout is read as it "
                "comes: date,time,open,high,low,close,volume without a header)."
            )
        names = MT4_COLUMNS
        notes.append(
            "read as MetaTrader 4's history export: no header row; date, time, open, high, low, "
            "close, volume"
        )
    rows = [_fields(line, sep) for line in lines[0 if headerless else 1 :][:_SAMPLE_ROWS]]
    decimal = "," if sep != "," and _decimal_commas([f for r in rows for f in r]) else "."
    if decimal == ",":
        notes.append(f"numbers read with a decimal comma (1,5 = 1.5); columns separated by {sep!r}")
    return TextLayout(sep=sep, decimal=decimal, names=names, notes=tuple(notes))


def numeric_fix(value: object) -> str:
    """The advice for a value that is not a number, by what it looks like."""
    text = str(value).strip()
    if _THOUSANDS.fullmatch(text) and "." in text:
        return "Remove thousands separators (1,234.5 -> 1234.5) or fix that row."
    if _DECIMAL_COMMA.fullmatch(text) or _DECIMAL_POINT.fullmatch(text):
        return (
            "Write every number with one decimal mark: 1.07160 throughout, or 1,07160 throughout "
            "in a file whose columns are separated by ';' or tabs (then read as decimal commas); "
            "a thousands separator must go (1,234 -> 1234)."
        )
    return "Remove thousands separators/units or fix that row."


def volume_column(raw: pd.DataFrame, by_norm: dict[str, object]) -> tuple[object | None, str]:
    """The column volume is read from, and a note when it is the tick volume by fallback.

    Real volume when the file has it with any non-zero value; tick volume when real volume is
    0 on every row (MetaTrader's ``<VOL>``/``real_volume`` for forex) or absent.
    """
    real = next((by_norm[a] for a in REAL_VOLUME if a in by_norm), None)
    tick = next((by_norm[a] for a in TICK_VOLUME if a in by_norm), None)
    if real is None or tick is None:
        return (tick if real is None else real), ""
    if (pd.to_numeric(raw[real], errors="coerce") != 0).any():
        return real, ""
    return tick, (
        f"volume is read from {str(tick)!r} (tick volume): {str(real)!r} (real volume) is 0 on "
        "every row"
    )


def _head_lines(path: Path) -> list[str]:
    """The first non-blank lines of the file (whole lines only), without a byte-order mark."""
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    lines = head.decode("utf-8", errors="replace").removeprefix("\ufeff").splitlines()
    if len(head) == _HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # cut mid-line by the read
    return [line for line in lines if line.strip()]


def _fields(line: str, sep: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=sep), [])]


def _is_data(field: str) -> bool:
    """A number, a date or a time: what a bar holds, never a column name."""
    return bool(_NUMBER.fullmatch(field) or _DATE_TIME.fullmatch(field))


def _is_mt4(fields: list[str]) -> bool:
    return (
        len(fields) == len(MT4_COLUMNS)
        and bool(_MT4_DATE.fullmatch(fields[0]) and _MT4_TIME.fullmatch(fields[1]))
        and all(_NUMBER.fullmatch(f) for f in fields[2:])
    )


def _decimal_commas(fields: list[str]) -> bool:
    """Numbers written 1,07160 and none written 1.07160: the comma is the decimal mark."""
    has_comma = any(_DECIMAL_COMMA.fullmatch(f) for f in fields)
    return has_comma and not any(_DECIMAL_POINT.fullmatch(f) for f in fields)
