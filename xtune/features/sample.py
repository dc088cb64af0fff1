"""Built-in sample bars, so the quickstart and the tests need no download.

- ``synthetic``: 6,000 deterministic hourly bars with volatility clustering and a weak,
  learnable momentum effect (so a search has something real to find).
- ``random_walk``: 6,000 hourly bars of a pure geometric random walk: nothing is predictable,
  and any model that scores above chance on it is leaking the future.
- ``eurusd`` / ``goog``: real EURUSD hourly (5,000 bars) and GOOG daily (2,148 bars) shipped by
  the ``backtesting`` package (AGPL, so an optional extra: ``pip install -e ".[sample]"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xtune.errors import DataError

SAMPLES = ("synthetic", "random_walk", "eurusd", "goog")


def synthetic_bars(
    n: int = 6000, *, seed: int = 7, momentum: float = 0.15, freq: str = "1h"
) -> pd.DataFrame:
    """Deterministic OHLCV bars from a GARCH-like log-price walk.

    Args:
        n: number of bars.
        seed: RNG seed; same seed, same bars, on every machine.
        momentum: AR(1) coefficient of the bar's drift on the previous bar's return
            (0 gives a pure random walk).
        freq: bar interval.
    """
    rng = np.random.default_rng(seed)
    substeps = 6  # intrabar path points, for honest high/low
    shocks = rng.standard_normal((n, substeps))
    vol = np.empty(n)
    rets = np.empty(n)
    var, prev = 1e-6, 0.0
    for t in range(n):
        # GARCH(1,1)-style variance: quiet and wild stretches like real markets.
        var = 2e-8 + 0.05 * prev**2 + 0.93 * var
        vol[t] = np.sqrt(var)
        drift = momentum * prev
        rets[t] = drift + vol[t] * shocks[t].sum() / np.sqrt(substeps)
        prev = rets[t]
    # Intrabar path: scaled partial sums that end exactly at the bar's return.
    steps = shocks * (vol[:, None] / np.sqrt(substeps))
    path = np.cumsum(steps, axis=1)
    path += (rets - path[:, -1])[:, None] * (np.arange(1, substeps + 1) / substeps)
    log_close = np.log(100.0) + np.cumsum(rets)
    log_open = np.concatenate([[np.log(100.0)], log_close[:-1]])
    intrabar = log_open[:, None] + path
    high = np.maximum(np.exp(intrabar.max(axis=1)), np.exp(log_open))
    low = np.minimum(np.exp(intrabar.min(axis=1)), np.exp(log_open))
    volume = np.round(1000 * np.exp(0.3 * rng.standard_normal(n)) * (1 + 200 * np.abs(rets)))
    index = pd.date_range("2020-01-01", periods=n, freq=freq, tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": np.exp(log_open),
            "high": high,
            "low": low,
            "close": np.exp(log_close),
            "volume": volume,
        },
        index=index,
    )


def load_sample(name: str) -> pd.DataFrame:
    """Raw OHLCV frame of a built-in sample (validated later by ``load_bars``)."""
    if name == "synthetic":
        return synthetic_bars()
    if name == "random_walk":
        return synthetic_bars(seed=11, momentum=0.0)
    if name in ("eurusd", "goog"):
        try:
            from backtesting import test as bt_test
        except ImportError as exc:
            raise DataError(
                f"sample:{name} needs the optional 'backtesting' package (AGPL). "
                'Install it with: pip install -e ".[sample]"'
            ) from exc
        frame: pd.DataFrame = getattr(bt_test, name.upper()).copy()
        frame.index.name = "time"
        return frame
    raise DataError(f"sample:{name}: unknown sample. Choose one of: {', '.join(SAMPLES)}.")
