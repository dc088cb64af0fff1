"""A trading view of direction predictions: a plain long/short rule after fees, and its Sharpe\nratio, maximum drawdown and Calmar ratio."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SECONDS_PER_YEAR = 365.25 * 24 * 3600


def bars_per_year(times: pd.DatetimeIndex) -> float:
    """Bars per calendar year of a data set: its bar intervals over its span in years.

    Gaps (weekends, holidays, closed sessions) count as time without bars, so daily stock bars
    give ~252 and hourly FX bars ~6,200: the bars a year of trading them holds. This one figure
    annualizes the Sharpe and Calmar ratios, and the deflated Sharpe takes it back out; fewer
    than two bars, or no time between them, give 1.0 (nothing to annualize).
    """
    if len(times) < 2:
        return 1.0
    return bars_per_span(len(times), (times[-1] - times[0]).total_seconds())


def bars_per_span(rows: int, seconds: float) -> float:
    """:func:`bars_per_year` of ``rows`` bars from the first to the last ``seconds`` apart."""
    return (rows - 1) / (seconds / SECONDS_PER_YEAR) if rows > 1 and seconds > 0 else 1.0


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
    """Annualized Sharpe ratio of the rule's per-bar returns: their mean over their standard
    deviation, times ``sqrt(per_year / horizon)`` (each is a ``horizon``-bar holding's return
    over ``horizon``; ``per_year`` from :func:`bars_per_year`)."""
    std = float(pnl.std())
    if std == 0.0 or not np.isfinite(std):
        return 0.0
    return float(pnl.mean() / std * annualization(horizon, per_year))


def annualization(horizon: int, per_year: float) -> float:
    """The factor :func:`sharpe` multiplies a per-bar Sharpe ratio by: the square root of the
    ``horizon``-bar holdings a year holds. Dividing by it gives the per-bar ratio back."""
    return math.sqrt(max(per_year, 1e-12) / max(horizon, 1))


def max_drawdown(pnl: np.ndarray) -> float:
    """The largest fall of the rule's equity from its running peak, as a fraction (0.2: -20%)."""
    equity = np.concatenate([[0.0], np.cumsum(pnl)])  # log equity, starting at 0
    return float(1.0 - np.exp((equity - np.maximum.accumulate(equity)).min()))


def calmar(pnl: np.ndarray, per_year: float) -> float:
    """Annualized return over the maximum drawdown (a drawdown under 0.01% counts as 0.01%);
    ``per_year`` from :func:`bars_per_year`."""
    return float(np.expm1(pnl.mean() * per_year) / max(max_drawdown(pnl), 1e-4))
