"""A trading view of direction predictions: Sharpe of a plain long/short rule after fees."""

from __future__ import annotations

import numpy as np
import pandas as pd

SECONDS_PER_YEAR = 365.25 * 24 * 3600


def periods_per_year(times: pd.DatetimeIndex) -> float:
    """Bars per year from the median bar interval (daily stock bars give ~365, not 252: gaps
    such as weekends are not bars, so this slightly overstates; it is the same for every trial)."""
    steps = np.diff(times.asi8)
    return SECONDS_PER_YEAR / (float(np.median(steps)) / 1e9) if len(steps) else 1.0


def sharpe(
    predicted: np.ndarray,
    forward_returns: np.ndarray,
    horizon: int,
    classes: int,
    fee: float,
    per_year: float,
) -> float:
    """Annualized Sharpe of: long on "up", short on "down", flat on "flat" (3 classes).

    Each bar opens a position held for ``horizon`` bars with weight 1/horizon (overlapping
    positions as staggered sub-strategies); ``fee`` is charged per unit of position change.

    Args:
        predicted: [N] class ids for consecutive bars.
        forward_returns: [N] the matching forward log returns over ``horizon``.
    """
    up = classes - 1
    position = np.where(predicted == up, 1.0, np.where(predicted == 0, -1.0, 0.0))
    turnover = np.abs(np.diff(position, prepend=0.0))
    pnl = (position * forward_returns - fee * turnover) / horizon
    std = float(pnl.std())
    if std == 0.0 or not np.isfinite(std):
        return 0.0
    return float(pnl.mean() / std * np.sqrt(per_year / horizon))
