"""Array versions of the ``ta`` indicators with trailing windows (min, max, sums, ranks) and of
its RSI: the same formulas as ``ta`` 0.11, on numpy arrays in place of chains of pandas calls.

The live bot recomputes every feature of its model on each new bar, over a few hundred bars,
where the cost is the calls, not the rows: ``ta``'s classes spend 0.3-3 ms a bar on dozens of
small pandas operations (Vortex builds a 3-column frame to take a row maximum, CCI and Aroon
call a Python function per window). Here each indicator is a handful of vectorised steps over
``sliding_window_view``. ``tests/features_tests/test_indicators.py`` holds every one to the
``ta`` library's own values on real bars, after the declared warm-up, to float rounding.

Each function returns ``ta``'s units (RSI in 0-100); rows before the first full window are NaN.
A frozen market gives NaN where ``ta`` divides 0 by 0, except in CCI (see :func:`cci`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import ta
from numpy.lib.stride_tricks import sliding_window_view

Reduce = Callable[..., np.ndarray]


def values(s: pd.Series) -> np.ndarray:
    return s.to_numpy(np.float64)


def rolling(x: np.ndarray, n: int, reduce: Reduce) -> np.ndarray:
    """``reduce(window, axis=1)`` over each trailing window of ``n`` rows; the first ``n - 1``
    rows are NaN, and so is any window holding a NaN (pandas' rule with ``min_periods = n``)."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = reduce(sliding_window_view(x, n), axis=1)
    return out


def shift(x: np.ndarray, k: int = 1) -> np.ndarray:
    """``x`` moved ``k`` rows later, NaN in front."""
    return np.concatenate([np.full(min(k, len(x)), np.nan), x[:-k]]) if k else x


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = num / den
    return out


def _series(x: np.ndarray, like: pd.Series) -> pd.Series:
    return pd.Series(x, index=like.index)


def rsi(close: pd.Series, n: int) -> pd.Series:
    """Wilder's RSI as ``ta.momentum.RSIIndicator``: the first change counts as 0 up, 0 down."""
    diff = np.diff(values(close), prepend=np.nan)  # [T], NaN at row 0
    moves = pd.DataFrame(
        {"up": np.where(diff > 0, diff, 0.0), "down": np.where(diff < 0, -diff, 0.0)}
    )
    smooth = moves.ewm(alpha=1 / n, min_periods=n, adjust=False).mean().to_numpy()  # [T, 2]
    up, down = smooth[:, 0], smooth[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(down == 0, 100.0, 100 - 100 / (1 + up / down))
    return _series(out, close)


def stoch_k(b: pd.DataFrame, n: int) -> np.ndarray:
    """Stochastic %K: 100 * (close - lowest low) / (highest high - lowest low) over ``n``."""
    low = rolling(values(b["low"]), n, np.min)
    return _ratio(100 * (values(b["close"]) - low), rolling(values(b["high"]), n, np.max) - low)


def stoch(b: pd.DataFrame, n: int) -> pd.Series:
    return _series(stoch_k(b, n), b["close"])


def stoch_signal(b: pd.DataFrame, n: int, smooth: int) -> pd.Series:
    """%D: the mean of %K over ``smooth`` bars."""
    return _series(rolling(stoch_k(b, n), smooth, np.mean), b["close"])


def williams_r(b: pd.DataFrame, n: int) -> pd.Series:
    """-100 * (highest high - close) / (highest high - lowest low) over ``n``."""
    high = rolling(values(b["high"]), n, np.max)
    wr = _ratio(-100 * (high - values(b["close"])), high - rolling(values(b["low"]), n, np.min))
    return _series(wr, b["close"])


def midpoint(b: pd.DataFrame, n: int) -> pd.Series:
    """Ichimoku's lines: the middle of the highest high and the lowest low over ``n``."""
    high, low = rolling(values(b["high"]), n, np.max), rolling(values(b["low"]), n, np.min)
    return _series(0.5 * (high + low), b["close"])


def cci(b: pd.DataFrame, n: int, constant: float = 0.015) -> pd.Series:
    """(typical price - its mean) / (constant * its mean absolute deviation), over ``n``."""
    typical = (values(b["high"]) + values(b["low"]) + values(b["close"])) / 3.0
    out = np.full(len(typical), np.nan)
    if len(typical) >= n:
        windows = sliding_window_view(typical, n)  # [T - n + 1, n]
        mean = windows.mean(axis=1, keepdims=True)
        mad = np.abs(windows - mean).mean(axis=1)
        cci = _ratio(typical[n - 1 :] - mean[:, 0], constant * mad)
        # A frozen market: the price is its mean. (Float rounding of the mean makes ``ta``'s
        # 0 / 0 here come out as 0 or NaN by chance; 0 is what the formula means.)
        out[n - 1 :] = np.where(windows.max(axis=1) == windows.min(axis=1), 0.0, cci)
    return _series(out, b["close"])


def aroon(x: pd.Series, n: int, pick: Reduce) -> pd.Series:
    """Aroon up (``pick=np.argmax`` on highs) or down (``np.argmin`` on lows): where in the
    last ``n + 1`` bars the extreme is, 100 for the newest bar (the first of equals wins)."""
    return _series(rolling(values(x), n + 1, pick) / n * 100, x)


def vortex_diff(b: pd.DataFrame, n: int) -> pd.Series:
    """VI+ minus VI-: the ``n``-bar sums of |high - previous low| and |low - previous high|,
    each over the ``n``-bar sum of the true range (the first bar has none: NaN)."""
    high, low, close = values(b["high"]), values(b["low"]), values(b["close"])
    prev = shift(close)
    true_range = np.fmax(np.fmax(high - low, np.abs(high - prev)), np.abs(low - prev))
    total = rolling(true_range, n, np.sum)
    plus = rolling(np.abs(high - shift(low)), n, np.sum)
    minus = rolling(np.abs(low - shift(high)), n, np.sum)
    with np.errstate(invalid="ignore"):  # inf - inf on a frozen market: NaN, as in ta
        return _series(_ratio(plus, total) - _ratio(minus, total), b["close"])


def mfi(b: pd.DataFrame, n: int) -> pd.Series:
    """Money flow index: typical price x volume, signed by the typical price's change (0 on
    the first bar), summed over ``n`` bars as inflow and outflow; 100 - 100 / (1 + in / out)."""
    typical = (values(b["high"]) + values(b["low"]) + values(b["close"])) / 3.0
    prev = shift(typical)
    sign = np.where(typical > prev, 1, np.where(typical < prev, -1, 0))
    flow = typical * values(b["volume"]) * sign
    inflow = rolling(np.where(flow >= 0.0, flow, 0.0), n, np.sum)
    outflow = np.abs(rolling(np.where(flow < 0.0, flow, 0.0), n, np.sum))
    return _series(100 - 100 / (1 + _ratio(inflow, outflow)), b["close"])


def ultimate(b: pd.DataFrame, windows: tuple[int, int, int] = (7, 14, 28)) -> pd.Series:
    """Ultimate oscillator: buying pressure over true range on three windows, weighted 4:2:1."""
    high, low, close = values(b["high"]), values(b["low"]), values(b["close"])
    prev = shift(close)
    pressure = close - np.minimum(low, prev)  # NaN on the first bar, as in ta
    true_range = np.fmax(np.fmax(high - low, np.abs(high - prev)), np.abs(low - prev))
    avg = [_ratio(rolling(pressure, n, np.sum), rolling(true_range, n, np.sum)) for n in windows]
    return _series(100.0 * (4.0 * avg[0] + 2.0 * avg[1] + 1.0 * avg[2]) / 7.0, b["close"])


def stoch_rsi_k(close: pd.Series, n: int, smooth: int = 3) -> pd.Series:
    """Stochastic RSI %K: where RSI(``n``) sits in its ``n``-bar range, averaged over
    ``smooth`` bars (0 to 1)."""
    r = values(rsi(close, n))
    low = rolling(r, n, np.min)
    k = _ratio(r - low, rolling(r, n, np.max) - low)
    return _series(rolling(k, smooth, np.mean), close)


def kama(close: pd.Series, n: int = 10, fast: int = 2, slow: int = 30) -> pd.Series:
    """Kaufman's adaptive moving average as ``ta`` computes it: seeded with the close at the
    first bar with a full window, then moved towards each close by the squared smoothing
    constant of its efficiency ratio. A recursion, so a loop, over Python floats (``ta``
    indexes numpy arrays element by element, ten times slower)."""
    c = values(close)
    num = np.abs(c - np.roll(c, n))  # ta's roll wraps around; only the seed row sees it
    den = rolling(np.abs(c - np.roll(c, 1)), n, np.sum)
    ratio = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    sc = (ratio * (2.0 / (fast + 1) - 2.0 / (slow + 1.0)) + 2 / (slow + 1.0)) ** 2.0
    out, prev = [], None
    for s, x in zip(sc.tolist(), c.tolist(), strict=True):
        if s != s:  # NaN: no full window yet
            prev = None if prev is None else s
        elif prev is None:
            prev = x
        else:
            prev = prev + s * (x - prev)
        out.append(np.nan if prev is None else prev)
    return _series(np.array(out, dtype=np.float64), close)


def _ichimoku(b: pd.DataFrame) -> ta.trend.IchimokuIndicator:
    return ta.trend.IchimokuIndicator(b["high"], b["low"], 9, 26, 52, visual=False)


def _stoch(b: pd.DataFrame) -> ta.momentum.StochasticOscillator:
    return ta.momentum.StochasticOscillator(b["high"], b["low"], b["close"], 14, 3)


def by_ta() -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
    """The catalog entries built on this module, as ``ta`` 0.11 computes them: their
    definitions before it, word for word. The tests hold both equal; ``bench/features.py``
    times both."""
    return {
        "aroon_up": lambda b: ta.trend.AroonIndicator(b["high"], b["low"], 25).aroon_up() / 100.0,
        "aroon_down": lambda b: (
            ta.trend.AroonIndicator(b["high"], b["low"], 25).aroon_down() / 100.0
        ),
        "cci_20": lambda b: (
            ta.trend.CCIIndicator(b["high"], b["low"], b["close"], 20).cci() / 100.0
        ),
        "vortex_diff_14": lambda b: ta.trend.VortexIndicator(
            b["high"], b["low"], b["close"], 14
        ).vortex_indicator_diff(),
        "ichimoku_conv": lambda b: _ichimoku(b).ichimoku_conversion_line() / b["close"] - 1.0,
        "ichimoku_base": lambda b: _ichimoku(b).ichimoku_base_line() / b["close"] - 1.0,
        "ichimoku_b": lambda b: _ichimoku(b).ichimoku_b() / b["close"] - 1.0,
        "rsi_14": lambda b: ta.momentum.RSIIndicator(b["close"], 14).rsi() / 100.0,
        "rsi_6": lambda b: ta.momentum.RSIIndicator(b["close"], 6).rsi() / 100.0,
        "stoch_k": lambda b: _stoch(b).stoch() / 100.0,
        "stoch_d": lambda b: _stoch(b).stoch_signal() / 100.0,
        "mfi_14": lambda b: (
            (
                ta.volume.MFIIndicator(b["high"], b["low"], b["close"], b["volume"], 14)
            ).money_flow_index()
            / 100.0
        ),
        "ultimate_osc": lambda b: (
            ta.momentum.UltimateOscillator(b["high"], b["low"], b["close"]).ultimate_oscillator()
            / 100.0
        ),
        "stoch_rsi": lambda b: ta.momentum.StochRSIIndicator(b["close"], 14).stochrsi_k(),
        "kama_ratio": lambda b: (
            b["close"] / ta.momentum.KAMAIndicator(b["close"], window=10).kama() - 1.0
        ),
        "williams_r": lambda b: (
            ta.momentum.WilliamsRIndicator(b["high"], b["low"], b["close"], 14).williams_r() / 100.0
        ),
    }
