"""Bars with known answers: each bar's probability of an up move is set by the generator, so
the best accuracy any predictor can reach (the Bayes rate) is known exactly.

Row t's label (``xtune``'s direction at horizon 1) is ``close[t + 1] > close[t]``. Here that
move's sign is drawn alone, up with probability ``p_up[t]``, and its size apart from its sign,
from a normal draw of fixed scale; ``p_up[t]`` is a function of the bars up to t only. So
``p_up[t]`` is the probability of an up move given everything a predictor can see at bar t,
the Bayes predictor says "up" where ``p_up > 0.5``, and its expected accuracy on any rows is
``mean(max(p_up, 1 - p_up))``.

Volume is an i.i.d. log-normal shock ``z`` per bar, drawn before the prices and never moved by
them; the problems read it from there:

- ``needle``: ``p_up[t] = 0.5 + strength * tanh(z[t - LAG])``, the volume shock ``LAG`` (47)
  bars back. Only the volume group's indicators see volume, and only a window of at least 48
  rows holds row t - 47; a 32-row window's oldest 20-bar averages hold that bar as one in
  twenty.
- ``spike``: the same with a lag of 0, this bar's volume shock: one group of seven, any
  window.
- ``interaction``: ``p_up[t] = 0.5 + strength * tanh(z[t]) * tanh(ret12[t] / (sigma sqrt(12)))``:
  the last 12 bars' move goes on after a heavy-volume bar and turns after a light one. Volume
  alone says nothing (the move is as likely up as down), price alone nothing (this bar's
  volume shock is new): it needs the volume group and a price group together.
- ``noise``: ``p_up = 0.5`` everywhere: nothing to find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

PROBLEMS = ("needle", "spike", "interaction", "noise")
LAG = 47  # the needle's lag, in bars
STRENGTH = {"needle": 0.3, "spike": 0.3, "interaction": 0.45, "noise": 0.0}  # p_up's reach
MOVE = 12  # the interaction's move, in bars
SIGMA = 0.004  # scale of a bar's log return
VOLUME_SIGMA = 0.5  # scale of the log volume shock
SUBSTEPS = 6  # intrabar path points, for high and low


@dataclass(frozen=True)
class Problem:
    """Bars and, per bar, the probability that the next bar closes higher."""

    name: str
    bars: pd.DataFrame  # OHLCV on an hourly UTC index
    p_up: np.ndarray  # [n] P(close[t + 1] > close[t] | bars up to t); NaN on the last bar

    @property
    def up(self) -> np.ndarray:
        """[n] the realized labels: 1 where the next bar closed higher; -1 on the last bar."""
        close = self.bars["close"].to_numpy()
        out = np.full(len(close), -1, np.int64)
        out[:-1] = (close[1:] > close[:-1]).astype(np.int64)
        return out

    def bayes_rate(self, rows: slice) -> BayesRate:
        """The Bayes rate on bars ``rows`` (each with a next bar)."""
        return bayes_rate(self.p_up[rows], self.up[rows])


@dataclass(frozen=True)
class BayesRate:
    """The best a predictor can do on some rows, expected and as it happened.

    ``expected_accuracy`` is ``mean(max(p, 1 - p))``; ``expected_baseline`` is the accuracy of
    always guessing the more likely class on average, ``max(mean p, 1 - mean p)``.
    ``accuracy`` and ``baseline`` are the Bayes predictor's accuracy and the majority share on
    the realized labels, as xtune scores a model on those rows (``edge`` = their difference).
    """

    rows: int
    expected_accuracy: float
    expected_baseline: float
    accuracy: float
    baseline: float

    @property
    def expected_edge(self) -> float:
        return self.expected_accuracy - self.expected_baseline

    @property
    def edge(self) -> float:
        return self.accuracy - self.baseline

    @property
    def noise(self) -> float:
        """Standard error of an accuracy (and an edge) on these rows."""
        b = self.baseline
        return math.sqrt(b * (1.0 - b) / max(self.rows, 1))


def bayes_rate(p_up: np.ndarray, up: np.ndarray) -> BayesRate:
    """The Bayes rate on the rows given by ``p_up`` and ``up`` (the same rows of each)."""
    p, y = np.asarray(p_up, np.float64), np.asarray(up, np.int64)
    assert len(p) == len(y) and len(p) > 0 and np.isfinite(p).all() and (y >= 0).all()
    share = float(y.mean())
    guess = (p > 0.5).astype(np.int64)  # a tie (p = 0.5) guesses down, as argmax does
    return BayesRate(
        rows=len(p),
        expected_accuracy=float(np.maximum(p, 1.0 - p).mean()),
        expected_baseline=float(max(p.mean(), 1.0 - p.mean())),
        accuracy=float((guess == y).mean()),
        baseline=max(share, 1.0 - share),
    )


def make_problem(name: str, n: int = 6000, *, seed: int = 0) -> Problem:
    """``n`` hourly bars of problem ``name`` (see the module), the same for the same seed;
    ``p_up`` strays from 0.5 by at most ``STRENGTH[name]``."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose one of {', '.join(PROBLEMS)}")
    strength = STRENGTH[name]
    rng = np.random.default_rng([seed, PROBLEMS.index(name)])
    z = rng.standard_normal(n)  # volume shocks, drawn before any price
    draws = rng.random(n)  # the up/down draw of each bar's move
    sizes = np.abs(rng.standard_normal(n)) * SIGMA  # each move's size, apart from its sign
    rets = np.zeros(n)  # rets[t]: log(close[t] / close[t - 1]); 0 on the first bar
    p_up = np.full(n, np.nan)
    for t in range(n - 1):
        p_up[t] = 0.5 + strength * _signal(name, t, z, rets)
        rets[t + 1] = sizes[t + 1] if draws[t + 1] < p_up[t] else -sizes[t + 1]
    volume = np.round(1000.0 * np.exp(VOLUME_SIGMA * z))
    return Problem(name, _ohlc(rets, volume, rng), p_up)


def _signal(name: str, t: int, z: np.ndarray, rets: np.ndarray) -> float:
    """In [-1, 1]: which way bar t + 1 leans, from bars up to t."""
    if name in ("needle", "spike"):
        lag = LAG if name == "needle" else 0
        return math.tanh(z[t - lag]) if t >= lag else 0.0
    if name == "interaction":
        move = rets[max(t - MOVE + 1, 0) : t + 1].sum() / (SIGMA * math.sqrt(MOVE))
        return math.tanh(z[t]) * math.tanh(move)
    return 0.0


def _ohlc(rets: np.ndarray, volume: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Bars from log returns: open at the previous close, high and low from an intrabar path
    (a scaled random walk bent to end at the bar's return; drawn after the return, it says
    nothing about the next bar)."""
    n = len(rets)
    steps = rng.standard_normal((n, SUBSTEPS)) * (SIGMA / math.sqrt(SUBSTEPS))
    path = np.cumsum(steps, axis=1)
    path += (rets - path[:, -1])[:, None] * (np.arange(1, SUBSTEPS + 1) / SUBSTEPS)
    log_close = math.log(100.0) + np.cumsum(rets)
    log_open = np.concatenate([[math.log(100.0)], log_close[:-1]])
    intrabar = log_open[:, None] + path
    index = pd.date_range("2020-01-01", periods=n, freq="1h", tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": np.exp(log_open),
            "high": np.maximum(np.exp(intrabar.max(axis=1)), np.exp(log_open)),
            "low": np.minimum(np.exp(intrabar.min(axis=1)), np.exp(log_open)),
            "close": np.exp(log_close),
            "volume": volume,
        },
        index=index,
    )
