"""Pure helpers of the catalog's own indicators (ratios, logs, true range, Wilder smoothing)."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd


def safe_div(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den with 0/0 -> 0 (flat bars, zero volume) instead of NaN mid-series."""
    out = num / den.where(den != 0)
    return out.where(den != 0, 0.0)


def wilder(x: pd.Series, n: int) -> pd.Series:
    """Wilder's smoothing (RMA) seeded by the first value; recursive, so causal."""
    return x.ewm(alpha=1.0 / n, adjust=False).mean()


def true_range(b: pd.DataFrame) -> pd.Series:
    """max(high - low, |high - prev close|, |low - prev close|); row 0: high - low."""
    high, low = b["high"].to_numpy(np.float64), b["low"].to_numpy(np.float64)
    prev = b["close"].shift(1).to_numpy(np.float64)
    tr = np.fmax(np.fmax(high - low, np.abs(high - prev)), np.abs(low - prev))  # fmax skips NaN
    return pd.Series(tr, index=b.index)


def log(x: pd.Series) -> pd.Series:
    return cast(pd.Series, np.log(x))


def logret(close: pd.Series, k: int) -> pd.Series:
    return log(close / close.shift(k))


def dmi(b: pd.DataFrame, n: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """+DI, -DI and ADX in [0, 1] with Wilder smoothing, computed on every bar incl. the newest.

    On arrays (the live bot computes it three times per bar): row 0 has no change and is NaN.
    """
    high, low = b["high"].to_numpy(np.float64), b["low"].to_numpy(np.float64)
    up, down = np.diff(high), -np.diff(low)  # [T - 1], from row 1
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    atr = _rma(true_range(b).to_numpy()[1:], n)
    plus = _div0(_rma(plus_dm, n), atr)
    minus = _div0(_rma(minus_dm, n), atr)
    adx = _rma(_div0(np.abs(plus - minus), plus + minus), n)
    return tuple(  # type: ignore[return-value]
        pd.Series(np.concatenate([[np.nan], x]), index=b.index) for x in (plus, minus, adx)
    )


def _rma(x: np.ndarray, n: int) -> np.ndarray:
    return wilder(pd.Series(x), n).to_numpy()


def _div0(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """:func:`safe_div` on arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / den, 0.0)
