"""A trading view of direction predictions: a plain long/short rule after fees, and its Sharpe\nratio, maximum drawdown and Calmar ratio."""

from __future__ import annotations

import numpy as np
import pandas as pd

SECONDS_PER_YEAR = 365.25 * 24 * 3600


def periods_per_year(times: pd.DatetimeIndex) -> float:
    """Bars per year from the median bar interval (daily stock bars give ~365, not 252: gaps
    such as weekends are not bars, so this slightly overstates; it is the same for every trial)."""
    steps = np.diff(times.asi8)
    return SECONDS_PER_YEAR / (float(np.median(steps)) / 1e9) if len(steps) else 1.0


def rule_pnl(
    predicted: np.ndarray, forward_returns: np.ndarray, horizon: int, classes: int, fee: float
) -> np.ndarray:
    """Per-bar log return of: long on "up", short on "down", flat on "flat" (3 classes).

    Each bar opens a position held for ``horizon`` bars with weight 1/horizon (overlapping
    positions as staggered sub-strategies); ``fee`` is charged per unit of position change.

    Args:
        predicted: [N] class ids for consecutive bars.
        forward_returns: [N] the matching forward log returns over ``horizon``.
    """
    up = classes - 1
    position = np.where(predicted == up, 1.0, np.where(predicted == 0, -1.0, 0.0))
    turnover = np.abs(np.diff(position, prepend=0.0))
    pnl: np.ndarray = (position * forward_returns - fee * turnover) / horizon
    return pnl


def sharpe(pnl: np.ndarray, horizon: int, per_year: float) -> float:
    """Annualized Sharpe ratio of the rule's per-bar returns."""
    std = float(pnl.std())
    if std == 0.0 or not np.isfinite(std):
        return 0.0
    return float(pnl.mean() / std * np.sqrt(per_year / horizon))


def max_drawdown(pnl: np.ndarray) -> float:
    """The largest fall of the rule's equity from its running peak, as a fraction (0.2: -20%)."""
    equity = np.concatenate([[0.0], np.cumsum(pnl)])  # log equity, starting at 0
    return float(1.0 - np.exp((equity - np.maximum.accumulate(equity)).min()))


def calmar(pnl: np.ndarray, per_year: float) -> float:
    """Annualized return over the maximum drawdown (a drawdown under 0.01% counts as 0.01%)."""
    return float(np.expm1(pnl.mean() * per_year) / max(max_drawdown(pnl), 1e-4))
