"""Candlestick patterns (TA-Lib) and calendar features, declared after the indicators.

Every one of TA-Lib's 61 pattern functions is here, with TA-Lib's default parameters. TA-Lib
answers +-100 (pattern), +-80 (a weaker form of engulfing and harami) or 0; we divide by 100, so a
pattern reads +1 bullish, -1 bearish, 0 none. The two Hikkake patterns also answer +-200 on the
bar that confirms an earlier pattern; they are divided by 200 instead (``full_scale`` in their
params), so every pattern stays in [-1, 1]: +-0.5 the pattern, +-1 its confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import talib

from xtune.features.registry import FeatureFn, Register

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


# The other 44, in TA-Lib's order, declared after the first 17 (bundles and studies name those).
_MORE_PATTERNS = {
    "two_crows": "CDL2CROWS",
    "three_inside": "CDL3INSIDE",
    "three_line_strike": "CDL3LINESTRIKE",
    "three_outside": "CDL3OUTSIDE",
    "three_stars_in_south": "CDL3STARSINSOUTH",
    "abandoned_baby": "CDLABANDONEDBABY",
    "advance_block": "CDLADVANCEBLOCK",
    "belt_hold": "CDLBELTHOLD",
    "breakaway": "CDLBREAKAWAY",
    "closing_marubozu": "CDLCLOSINGMARUBOZU",
    "concealing_baby_swallow": "CDLCONCEALBABYSWALL",
    "counterattack": "CDLCOUNTERATTACK",
    "doji_star": "CDLDOJISTAR",
    "evening_doji_star": "CDLEVENINGDOJISTAR",
    "gap_side_by_side_white": "CDLGAPSIDESIDEWHITE",
    "harami_cross": "CDLHARAMICROSS",
    "high_wave": "CDLHIGHWAVE",
    "hikkake": "CDLHIKKAKE",
    "hikkake_mod": "CDLHIKKAKEMOD",
    "homing_pigeon": "CDLHOMINGPIGEON",
    "identical_three_crows": "CDLIDENTICAL3CROWS",
    "in_neck": "CDLINNECK",
    "kicking": "CDLKICKING",
    "kicking_by_length": "CDLKICKINGBYLENGTH",
    "ladder_bottom": "CDLLADDERBOTTOM",
    "long_legged_doji": "CDLLONGLEGGEDDOJI",
    "long_line": "CDLLONGLINE",
    "matching_low": "CDLMATCHINGLOW",
    "mat_hold": "CDLMATHOLD",
    "morning_doji_star": "CDLMORNINGDOJISTAR",
    "on_neck": "CDLONNECK",
    "rickshaw_man": "CDLRICKSHAWMAN",
    "rise_fall_three_methods": "CDLRISEFALL3METHODS",
    "separating_lines": "CDLSEPARATINGLINES",
    "short_line": "CDLSHORTLINE",
    "stalled_pattern": "CDLSTALLEDPATTERN",
    "stick_sandwich": "CDLSTICKSANDWICH",
    "takuri": "CDLTAKURI",
    "tasuki_gap": "CDLTASUKIGAP",
    "thrusting": "CDLTHRUSTING",
    "tristar": "CDLTRISTAR",
    "unique_three_river": "CDLUNIQUE3RIVER",
    "upside_gap_two_crows": "CDLUPSIDEGAP2CROWS",
    "gap_three_methods": "CDLXSIDEGAP3METHODS",
}

# TA-Lib's value for a full-strength signal where it is not 100: +-200 marks the confirmation.
_FULL_SCALE = {"CDLHIKKAKE": 200, "CDLHIKKAKEMOD": 200}


def _pattern(func_name: str, settings: dict[str, float], full_scale: int) -> FeatureFn:
    func = getattr(talib, func_name)
    lookback = _info(func_name)[0]

    def compute(b: pd.DataFrame) -> pd.Series:
        out = func(
            b["open"].to_numpy(np.float64),
            b["high"].to_numpy(np.float64),
            b["low"].to_numpy(np.float64),
            b["close"].to_numpy(np.float64),
            **settings,
        )
        # TA-Lib writes 0 during its lookback: mark those rows as warm-up, not "no pattern".
        values = out.astype(np.float64) / full_scale
        values[:lookback] = np.nan
        return pd.Series(values, index=b.index)

    return compute


def _info(func_name: str) -> tuple[int, str, dict[str, float]]:
    """TA-Lib's lookback, display name and default parameters (e.g. ``penetration``)."""
    from talib import abstract

    func = abstract.Function(func_name)  # type: ignore[attr-defined]
    return int(func.lookback), str(func.info["display_name"]), dict(func.parameters)


def _declare_pattern(
    register: Register, name: str, func_name: str, *, record_settings: bool
) -> None:
    lookback, title, settings = _info(func_name)
    full_scale = _FULL_SCALE.get(func_name, 100)
    params: dict[str, Any] = {"talib": func_name}  # Any: mypy reads ** as maybe `neutral`
    if record_settings:
        params |= settings
    if full_scale != 100:
        params["full_scale"] = full_scale
    sign = "+1 bullish, -1 bearish, 0 none"
    if full_scale != 100:
        sign = "+0.5 bullish, -0.5 bearish, +-1 confirmed, 0 none"
    register(f"cdl_{name}", "pattern", lookback, f"TA-Lib {func_name} ({title}): {sign}", **params)(
        _pattern(func_name, settings, full_scale)
    )


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


def declare(register: Register) -> None:
    """Declare every pattern, then the calendar features, with the catalog's ``register``."""
    # The first 17 keep the params they were exported with ({"talib": ...}), so existing
    # bundles still load: three of them (dark cloud cover, morning/evening star) take TA-Lib's
    # default penetration, as they always did, without recording it. The other 44 record theirs.
    for name, func in _PATTERNS.items():
        _declare_pattern(register, name, func, record_settings=False)
    for name, func in _MORE_PATTERNS.items():
        _declare_pattern(register, name, func, record_settings=True)
    for part in _CYCLES:
        register(f"{part}_sin", "calendar", 0, f"sin of {part} (cycle of {_CYCLES[part]})")(
            _calendar(part, np.sin)
        )
        register(f"{part}_cos", "calendar", 0, f"cos of {part} (cycle of {_CYCLES[part]})")(
            _calendar(part, np.cos)
        )
