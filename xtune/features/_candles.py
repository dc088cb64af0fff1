"""Candlestick patterns (TA-Lib) and calendar features, registered after the indicators."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib

from xtune.features.registry import FeatureFn, register

# ---------------------------------------------------------------- candlestick patterns (TA-Lib)
_PATTERNS = {
    "doji": "CDLDOJI",
    "dragonfly_doji": "CDLDRAGONFLYDOJI",
    "gravestone_doji": "CDLGRAVESTONEDOJI",
    "hammer": "CDLHAMMER",
    "inverted_hammer": "CDLINVERTEDHAMMER",
    "hanging_man": "CDLHANGINGMAN",
    "shooting_star": "CDLSHOOTINGSTAR",
    "engulfing": "CDLENGULFING",
    "harami": "CDLHARAMI",
    "piercing": "CDLPIERCING",
    "dark_cloud_cover": "CDLDARKCLOUDCOVER",
    "morning_star": "CDLMORNINGSTAR",
    "evening_star": "CDLEVENINGSTAR",
    "three_white_soldiers": "CDL3WHITESOLDIERS",
    "three_black_crows": "CDL3BLACKCROWS",
    "marubozu": "CDLMARUBOZU",
    "spinning_top": "CDLSPINNINGTOP",
}


def _pattern(func_name: str) -> FeatureFn:
    func = getattr(talib, func_name)

    def compute(b: pd.DataFrame) -> pd.Series:
        out = func(
            b["open"].to_numpy(np.float64),
            b["high"].to_numpy(np.float64),
            b["low"].to_numpy(np.float64),
            b["close"].to_numpy(np.float64),
        )
        # TA-Lib writes 0 during its lookback: mark those rows as warm-up, not "no pattern".
        values = out.astype(np.float64) / 100.0
        values[: _lookback(func_name)] = np.nan
        return pd.Series(values, index=b.index)

    return compute


def _lookback(func_name: str) -> int:
    from talib import abstract

    return int(abstract.Function(func_name).lookback)  # type: ignore[attr-defined]


for _name, _func in _PATTERNS.items():
    register(
        f"cdl_{_name}",
        "pattern",
        _lookback(_func),
        f"TA-Lib {_func}: +1 bullish, -1 bearish, 0 none",
        talib=_func,
    )(_pattern(_func))

# ---------------------------------------------------------------- calendar (known in advance)
_CYCLES = {"hour": 24, "dow": 7, "month": 12}


def _calendar(part: str, trig: Callable[[np.ndarray], np.ndarray]) -> FeatureFn:
    def compute(b: pd.DataFrame) -> pd.Series:
        index = pd.DatetimeIndex(b.index)
        value = {
            "hour": index.hour + index.minute / 60.0,
            "dow": index.day_of_week,
            "month": index.month - 1,
        }[part]
        return pd.Series(
            trig(2 * np.pi * np.asarray(value, np.float64) / _CYCLES[part]), index=b.index
        )

    return compute


for _part in _CYCLES:
    register(f"{_part}_sin", "calendar", 0, f"sin of {_part} (cycle of {_CYCLES[_part]})")(
        _calendar(_part, np.sin)
    )
    register(f"{_part}_cos", "calendar", 0, f"cos of {_part} (cycle of {_CYCLES[_part]})")(
        _calendar(_part, np.cos)
    )
