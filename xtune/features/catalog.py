"""The feature catalog: name -> pure ``bars DataFrame -> Series`` function, grouped.

Rules every entry follows (tests enforce them over the whole catalog):

- **Scale-free and stationary**: ratios to price, oscillators, log returns, trailing z-scores
  and trailing *changes* of cumulative series. No raw price level, no running total.
- **No look-ahead**: the value at bar t uses bars <= t only; computing on ``bars[:t]`` gives the
  same values as computing on all bars.
- **Declared warm-up**: ``warmup`` is the number of leading rows that are invalid (NaN or filled
  by the library); the pipeline drops them, it never fills them.
- **Declared memory**: recursive smoothers (EMA, Wilder) declare ``memory``, the bars after which
  their start no longer matters (``_decay``: the seeds' weight under 1e-8); the rest forget
  their start at their warm-up.

Left out on purpose: ``ta`` 0.11's KST and visual Ichimoku (they fill shifted values with the
full-series mean: look-ahead), PSAR (seconds per 5k bars, NaN on half its rows), OBV / A/D / NVI
/ VPT levels (cumulative; only their trailing changes are here), and ``ta``'s ADX (its loops leave
the newest bar at 0, which is exactly the bar a live bot trades on; ours is computed in full).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import ta

from xtune.features import _candles
from xtune.features import _indicators as _ind
from xtune.features._math import dmi, log, logret, safe_div, true_range, wilder
from xtune.features.feature_set import FeatureSet
from xtune.features.registry import GROUPS, Declarations, Feature, FeatureFn
from xtune.features.registry import smoothing_memory as _decay

__all__ = ["CATALOG", "GROUPS", "Feature", "FeatureFn", "history_of", "resolve", "warmup_of"]

_DECLARED = Declarations("")  # the catalog as its declarations run, once, at import
_register = _DECLARED.register


# ---------------------------------------------------------------- returns and bar shape (own)
def _ret(k: int) -> FeatureFn:
    return lambda b: logret(b["close"], k)


for _k in (1, 3, 6, 12, 24):
    _register(f"ret_{_k}", "returns", _k, f"log return over {_k} bar(s)", window=_k)(_ret(_k))


@_register("bar_range", "returns", 0, "log(high / low) of the bar")
def _bar_range(b: pd.DataFrame) -> pd.Series:
    return log(b["high"] / b["low"])


@_register("bar_body", "returns", 0, "log(close / open) of the bar")
def _bar_body(b: pd.DataFrame) -> pd.Series:
    return log(b["close"] / b["open"])


@_register("upper_wick", "returns", 0, "(high - max(open, close)) / close")
def _upper_wick(b: pd.DataFrame) -> pd.Series:
    return (b["high"] - np.maximum(b["open"], b["close"])) / b["close"]


@_register("lower_wick", "returns", 0, "(min(open, close) - low) / close")
def _lower_wick(b: pd.DataFrame) -> pd.Series:
    return -(b["low"] - np.minimum(b["open"], b["close"])) / b["close"]  # -(...): typed


@_register("gap", "returns", 1, "log(open / previous close)")
def _gap(b: pd.DataFrame) -> pd.Series:
    return log(b["open"] / b["close"].shift(1))


def _zscore(n: int) -> FeatureFn:
    return lambda b: safe_div(
        b["close"] - b["close"].rolling(n).mean(), b["close"].rolling(n).std(ddof=0)
    )


for _n in (10, 50):
    _register(f"zscore_{_n}", "returns", _n - 1, f"(close - SMA{_n}) / std{_n}", window=_n)(
        _zscore(_n)
    )


# ---------------------------------------------------------------- trend (ta.trend)
def _ma_ratio(average: Callable[..., pd.Series], n: int) -> FeatureFn:
    return lambda b: b["close"] / average(b["close"], window=n) - 1.0


for _n in (10, 20, 50, 100):
    _register(f"sma_ratio_{_n}", "trend", _n - 1, f"close / SMA{_n} - 1", window=_n)(
        _ma_ratio(ta.trend.sma_indicator, _n)
    )
for _n in (12, 26):
    _register(
        f"ema_ratio_{_n}",
        "trend",
        _n - 1,
        f"close / EMA{_n} - 1",
        memory=_decay(2 / (_n + 1)),
        window=_n,
    )(_ma_ratio(ta.trend.ema_indicator, _n))


def _macd(b: pd.DataFrame) -> ta.trend.MACD:
    return ta.trend.MACD(b["close"], window_slow=26, window_fast=12, window_sign=9)


_MACD = {"window_slow": 26, "window_fast": 12, "window_sign": 9}
_EMA26, _EMA26x2 = _decay(2 / 27), _decay(2 / 27, stages=2)  # the line; the signal on it
_register("macd", "trend", 25, "MACD line / close", memory=_EMA26, **_MACD)(
    lambda b: _macd(b).macd() / b["close"]
)
_register("macd_signal", "trend", 33, "MACD signal / close", memory=_EMA26x2, **_MACD)(
    lambda b: _macd(b).macd_signal() / b["close"]
)
_register("macd_hist", "trend", 33, "MACD histogram / close", memory=_EMA26x2, **_MACD)(
    lambda b: _macd(b).macd_diff() / b["close"]
)


# Wilder smoothing never forgets: warm-up 3n lets the seed's weight decay to (1-1/n)^3n ~ 5%,
# memory to 1e-8.
_W14, _W14x2 = _decay(1 / 14), _decay(1 / 14, stages=2)  # +1: the first bar has no change
_register("adx_14", "trend", 42, "ADX(14) in [0, 1] (Wilder)", memory=_W14x2 + 1, window=14)(
    lambda b: dmi(b, 14)[2]
)
_register("di_plus_14", "trend", 42, "+DI(14) in [0, 1]", memory=_W14 + 1, window=14)(
    lambda b: dmi(b, 14)[0]
)
_register("di_minus_14", "trend", 42, "-DI(14) in [0, 1]", memory=_W14 + 1, window=14)(
    lambda b: dmi(b, 14)[1]
)


_register("aroon_up", "trend", 25, "Aroon up(25) / 100", window=25)(
    lambda b: _ind.aroon(b["high"], 25, np.argmax) / 100.0
)
_register("aroon_down", "trend", 25, "Aroon down(25) / 100", window=25)(
    lambda b: _ind.aroon(b["low"], 25, np.argmin) / 100.0
)
_register("cci_20", "trend", 19, "CCI(20) / 100", window=20)(lambda b: _ind.cci(b, 20) / 100.0)
_register("vortex_diff_14", "trend", 14, "Vortex VI+ minus VI- (14)", window=14)(
    lambda b: _ind.vortex_diff(b, 14)
)
_register("trix_15", "trend", 43, "TRIX(15), percent", memory=_decay(2 / 16, 3) + 1, window=15)(
    lambda b: ta.trend.TRIXIndicator(b["close"], window=15).trix()
)
_register(
    "mass_index",
    "trend",
    40,
    "Mass index(9, 25)",
    memory=_decay(0.2, 2) + 25,
    window_fast=9,
    window_slow=25,
)(lambda b: ta.trend.MassIndex(b["high"], b["low"], window_fast=9, window_slow=25).mass_index())


# ta's IchimokuIndicator(visual=False): no forward shift (visual=True shifts and fills with the
# series mean). Its span B takes partial windows in the warm-up; here those rows are NaN.
_ICHI = {"window1": 9, "window2": 26, "window3": 52}
_register("ichimoku_conv", "trend", 8, "Ichimoku conversion line / close - 1", **_ICHI)(
    lambda b: _ind.midpoint(b, 9) / b["close"] - 1.0
)
_register("ichimoku_base", "trend", 25, "Ichimoku base line / close - 1", **_ICHI)(
    lambda b: _ind.midpoint(b, 26) / b["close"] - 1.0
)
_register("ichimoku_b", "trend", 51, "Ichimoku span B (unshifted) / close - 1", **_ICHI)(
    lambda b: _ind.midpoint(b, 52) / b["close"] - 1.0
)

# ---------------------------------------------------------------- momentum (ta.momentum)
_register("rsi_14", "momentum", 14, "RSI(14) / 100", memory=_W14 + 1, window=14)(
    lambda b: _ind.rsi(b["close"], 14) / 100.0
)
_register("rsi_6", "momentum", 6, "RSI(6) / 100", memory=_decay(1 / 6) + 1, window=6)(
    lambda b: _ind.rsi(b["close"], 6) / 100.0
)


_register("stoch_k", "momentum", 13, "Stochastic %K(14) / 100", window=14)(
    lambda b: _ind.stoch(b, 14) / 100.0
)
_register("stoch_d", "momentum", 15, "Stochastic %D(14, 3) / 100", window=14, smooth=3)(
    lambda b: _ind.stoch_signal(b, 14, 3) / 100.0
)
_register("williams_r", "momentum", 13, "Williams %R(14) / 100", window=14)(
    lambda b: _ind.williams_r(b, 14) / 100.0
)
_register("roc_10", "momentum", 10, "rate of change(10), percent", window=10)(
    lambda b: ta.momentum.ROCIndicator(b["close"], window=10).roc()
)
_register(
    "tsi",
    "momentum",
    37,
    "TSI(25, 13) / 100",
    memory=_decay(2 / 26, 2) + 1,
    window_slow=25,
    window_fast=13,
)(lambda b: ta.momentum.TSIIndicator(b["close"], window_slow=25, window_fast=13).tsi() / 100.0)
_register("ultimate_osc", "momentum", 28, "Ultimate oscillator(7, 14, 28) / 100")(
    lambda b: _ind.ultimate(b) / 100.0
)
_register("awesome_osc", "momentum", 33, "Awesome oscillator(5, 34) / close")(
    lambda b: (
        ta.momentum.AwesomeOscillatorIndicator(b["high"], b["low"]).awesome_oscillator()
        / b["close"]
    )
)
# KAMA's factor adapts in [(2/31)^2, (2/3)^2]: 245 bars covered every start on EURUSD hourly, GOOG
# daily and synthetic bars (the slowest factor bounds it only at 4,400; a frozen market needs more).
_register("kama_ratio", "momentum", 60, "close / KAMA(10, 2, 30) - 1", memory=400, window=10)(
    lambda b: b["close"] / _ind.kama(b["close"], 10) - 1.0
)


def _ppo(b: pd.DataFrame) -> ta.momentum.PercentagePriceOscillator:
    return ta.momentum.PercentagePriceOscillator(
        b["close"], window_slow=26, window_fast=12, window_sign=9
    )


_register("ppo", "momentum", 25, "PPO(12, 26), percent", memory=_EMA26, **_MACD)(
    lambda b: _ppo(b).ppo()
)
_register("ppo_hist", "momentum", 33, "PPO histogram, percent", memory=_EMA26x2, **_MACD)(
    lambda b: _ppo(b).ppo_hist()
)
_register(
    "stoch_rsi", "momentum", 30, "StochRSI(14, 3, 3)", memory=_W14 + 17, window=14, neutral=0.5
)(lambda b: _ind.stoch_rsi_k(b["close"], 14))

# ---------------------------------------------------------------- volatility (ta.volatility)
_register("atr_14", "volatility", 42, "ATR(14) / close (Wilder)", memory=_W14, window=14)(
    lambda b: wilder(true_range(b), 14) / b["close"]
)


def _bb(b: pd.DataFrame) -> ta.volatility.BollingerBands:
    return ta.volatility.BollingerBands(b["close"], window=20, window_dev=2)


_register("bb_width", "volatility", 19, "Bollinger band width(20, 2), percent", window=20)(
    lambda b: _bb(b).bollinger_wband()
)
_register("bb_pct", "volatility", 19, "Bollinger %B(20, 2)", window=20, neutral=0.5)(
    lambda b: _bb(b).bollinger_pband()
)


def _kc(b: pd.DataFrame) -> ta.volatility.KeltnerChannel:
    return ta.volatility.KeltnerChannel(b["high"], b["low"], b["close"], window=20, window_atr=10)


_register("kc_width", "volatility", 19, "Keltner channel width(20), percent", window=20)(
    lambda b: _kc(b).keltner_channel_wband()
)
_register("kc_pct", "volatility", 19, "Keltner channel %B(20)", window=20)(
    lambda b: _kc(b).keltner_channel_pband()
)


def _dc(b: pd.DataFrame) -> ta.volatility.DonchianChannel:
    return ta.volatility.DonchianChannel(b["high"], b["low"], b["close"], window=20)


_register("dc_width", "volatility", 19, "Donchian channel width(20), percent", window=20)(
    lambda b: _dc(b).donchian_channel_wband()
)
_register("dc_pct", "volatility", 19, "Donchian channel %B(20)", window=20)(
    lambda b: _dc(b).donchian_channel_pband()
)
_register("ulcer_14", "volatility", 26, "Ulcer index(14), percent", window=14)(
    lambda b: ta.volatility.UlcerIndex(b["close"], window=14).ulcer_index()
)


def _realized_vol(n: int) -> FeatureFn:
    return lambda b: logret(b["close"], 1).rolling(n).std(ddof=0)


for _n in (10, 50):
    _register(
        f"realized_vol_{_n}", "volatility", _n, f"std of 1-bar log returns over {_n}", window=_n
    )(_realized_vol(_n))
_register("vol_ratio", "volatility", 50, "log(realized vol 10 / realized vol 50)")(
    # Volatility of log returns is already scale-free; the 1e-8 keeps a frozen stretch at 0.
    lambda b: log(
        (logret(b["close"], 1).rolling(10).std(ddof=0) + 1e-8)
        / (logret(b["close"], 1).rolling(50).std(ddof=0) + 1e-8)
    )
)

# ---------------------------------------------------------------- volume (ta.volume)
_register("mfi_14", "volume", 14, "money flow index(14) / 100", window=14, neutral=0.5)(
    lambda b: _ind.mfi(b, 14) / 100.0
)
_register("cmf_20", "volume", 19, "Chaikin money flow(20)", window=20, neutral=0.0)(
    lambda b: ta.volume.ChaikinMoneyFlowIndicator(
        b["high"], b["low"], b["close"], b["volume"], window=20
    ).chaikin_money_flow()
)
_register("vwap_ratio_14", "volume", 13, "close / rolling VWAP(14) - 1", window=14, neutral=0.0)(
    lambda b: (
        b["close"]
        / ta.volume.VolumeWeightedAveragePrice(
            b["high"], b["low"], b["close"], b["volume"], window=14
        ).volume_weighted_average_price()
        - 1.0
    )
)
_register(
    "pvo",
    "volume",
    25,
    "percentage volume oscillator(12, 26)",
    memory=_EMA26,
    window_slow=26,
    window_fast=12,
)(lambda b: ta.momentum.PercentageVolumeOscillator(b["volume"]).pvo())


def _trailing_flow(flow: pd.Series, volume: pd.Series, n: int) -> pd.Series:
    """Change of a cumulative volume series over n bars / volume over those bars, in [-1, 1]."""
    return safe_div(flow.rolling(n).sum(), volume.rolling(n).sum())


_register(
    "obv_change_20", "volume", 20, "OBV change over 20 bars / volume over 20 bars", window=20
)(
    lambda b: _trailing_flow(
        ta.volume.OnBalanceVolumeIndicator(b["close"], b["volume"]).on_balance_volume().diff(),
        b["volume"],
        20,
    )
)
_register(
    "adi_change_20", "volume", 20, "A/D line change over 20 bars / volume over 20 bars", window=20
)(
    lambda b: _trailing_flow(
        ta.volume.AccDistIndexIndicator(b["high"], b["low"], b["close"], b["volume"])
        .acc_dist_index()
        .diff(),
        b["volume"],
        20,
    )
)


_register("volume_z_20", "volume", 19, "z-score of volume over 20 bars", window=20)(
    lambda b: safe_div(
        b["volume"] - b["volume"].rolling(20).mean(), b["volume"].rolling(20).std(ddof=0)
    )
)
_register("volume_ratio_20", "volume", 19, "log(1 + volume / SMA20 of volume)", window=20)(
    lambda b: np.log1p(safe_div(b["volume"], b["volume"].rolling(20).mean()))
)


_candles.declare(_register)  # patterns and calendar, last in catalog order

CATALOG = FeatureSet(_DECLARED.features)
"""The built-in features: a :class:`~xtune.features.FeatureSet` built once, at import."""
del _DECLARED, _register  # nothing declares into the catalog after import

# The catalog's own lookups; a study's or a bundle's features answer the same on their set.
resolve = CATALOG.resolve
warmup_of = CATALOG.warmup_of
history_of = CATALOG.history_of
