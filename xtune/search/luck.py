"""How much of the best validation result is luck: the price of picking the best of N trials.

The best of N noisy validation scores is biased upwards even when no trial has any skill.

- **Edge** (accuracy minus the majority baseline): a trial without skill has an edge of about
  0, give or take the binomial noise ``sqrt(p (1 - p) / n)`` of an accuracy on ``n``
  independent validation windows (windows overlap by ``horizon - 1`` bars, so ``n`` is divided
  by the horizon). The best of N such edges is rarely above the 95th percentile of the maximum
  of N normal draws: ``noise * z``, ``z = Phi^-1(0.95 ** (1 / N))``. A front trial whose edge
  is not above that is *not distinguishable from luck*.
- **Sharpe**: the deflated Sharpe ratio (Bailey and Lopez de Prado, 2014): the probability
  that the true Sharpe ratio is above the best one expected from N skill-less trials, given
  the spread of Sharpe ratios across the trials and the validation length (normal returns
  assumed: skew 0, kurtosis 3). Below 0.95: not distinguishable from luck. It works on
  per-bar Sharpe ratios: each trial's annualized one divided by the factor that annualized
  it (:func:`xtune.runtime.trading.annualization`, from the bars per year stored with the
  trial's scores), over ``samples / horizon`` non-overlapping holdings.

N is the number of configurations trained, to their end or until early stopping ended
them (each was a try the best was picked from); trials on the same validation part are
correlated, so the true number of independent tries is smaller and this errs on the side of
calling luck.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

_PHI = NormalDist()
EULER_GAMMA = 0.5772156649015329
CONFIDENCE = 0.95


def _max_quantile(n_trials: int) -> float:
    """The 95th percentile of the maximum of ``n_trials`` standard normal draws."""
    return _PHI.inv_cdf(CONFIDENCE ** (1.0 / max(1, n_trials)))


def _expected_max(n_trials: int) -> float:
    """E[max of N standard normals] (the approximation used by the deflated Sharpe ratio)."""
    if n_trials < 2:
        return 0.0
    a = _PHI.inv_cdf(1.0 - 1.0 / n_trials)
    b = _PHI.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return (1.0 - EULER_GAMMA) * a + EULER_GAMMA * b


@dataclass(frozen=True)
class LuckBar:
    """What chance alone achieves when the best of ``trials`` trials is picked."""

    trials: int
    noise: float  # standard deviation of a skill-less trial's edge
    expected_best_edge: float  # inflation of the best edge: its expected value without skill
    edge_bar: float  # the 95th percentile of the best skill-less edge

    def lucky(self, edge: float) -> bool:
        return edge <= self.edge_bar


@dataclass(frozen=True)
class Luck:
    """One trial's standing against chance: its study's :class:`LuckBar`, whether its edge is
    under that bar, and its deflated Sharpe ratio.

    Example:
        >>> odds = Luck(12, 0.02, 0.03, 0.045, False, 0.97, 6048.0)
        >>> Luck.from_dict(odds.to_dict()) == odds
        True
    """

    trials: int  # N: the configurations tried, that the best was picked from
    noise: float
    expected_best_edge: float
    edge_bar: float
    lucky: bool  # the edge is not above ``edge_bar``: not distinguishable from luck
    deflated_sharpe: float  # below 0.95: not distinguishable from luck
    bars_per_year: float  # what annualized the trial's Sharpe ratio

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, one key per field (``status --format json``'s ``luck``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Luck:
        return cls(**raw)


def edge_bar(trials: int, samples: int, baseline: float, horizon: int = 1) -> LuckBar:
    """The luck bar for edges measured on ``samples`` validation windows."""
    n = max(1.0, samples / max(1, horizon))
    noise = math.sqrt(max(baseline * (1.0 - baseline), 1e-12) / n)
    return LuckBar(trials, noise, noise * _expected_max(trials), noise * _max_quantile(trials))


def deflated_sharpe(
    sharpe: float, all_sharpes: list[float], observations: float, trials: int
) -> float:
    """Probability that the true Sharpe ratio of the best trial is above what the best of
    ``trials`` skill-less trials would show (normal returns assumed).

    With per-bar (not annualized) Sharpe ratios (``all_sharpes``: those of the trials with
    measured scores), N ``trials``, T ``observations`` and the Euler gamma g::

        SR0 = std(all_sharpes) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))
        DSR = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2))

    with skew 0 and kurtosis 3, so the root is ``sqrt(1 + SR^2 / 2)``.
    """
    spread = float(np.std(all_sharpes, ddof=1)) if len(all_sharpes) > 1 else 0.0
    benchmark = spread * _expected_max(trials)
    denominator = math.sqrt(max(1.0 + 0.5 * sharpe * sharpe, 1e-12))
    return _PHI.cdf((sharpe - benchmark) * math.sqrt(max(observations - 1, 1)) / denominator)
