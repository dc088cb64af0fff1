"""bench/_known.py: the known-answer bars say the truth about their Bayes rate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from _known import LAG, make_problem

from xtune.features import load_bars
from xtune.features.build import build_features
from xtune.features.catalog import CATALOG


def _group(name: str) -> list[str]:
    return [n for n, f in CATALOG.items() if f.group == name]


@pytest.mark.parametrize("name", ["needle", "interaction"])
def test_a_predictor_given_p_up_scores_the_stated_bayes_accuracy(name: str) -> None:
    problem = make_problem(name, 20000, seed=3)
    rows = slice(100, -1)
    rate = problem.bayes_rate(rows)
    # within 3 standard errors of the expected accuracy, on 19,899 rows
    assert abs(rate.accuracy - rate.expected_accuracy) < 3 * rate.noise
    assert rate.expected_edge > 0.08
    # calibrated: where p_up is high, the next bar closes higher that often (a label shifted
    # by one bar would score 0.5 here)
    p, up = problem.p_up[rows], problem.up[rows]
    sure = p > 0.6
    assert abs(up[sure].mean() - p[sure].mean()) < 3 * np.sqrt(0.25 / sure.sum())
    assert up[sure].mean() > 0.6


def test_noise_has_no_edge() -> None:
    problem = make_problem("noise", 5000, seed=0)
    assert (problem.p_up[:-1] == 0.5).all()
    rate = problem.bayes_rate(slice(0, -1))
    assert rate.expected_edge == 0.0
    # a coin: the up share within 3 standard errors of one half, so the Bayes predictor's
    # realized edge (its ties guess down) is at most 0 and within 6 of them
    assert abs(problem.up[:-1].mean() - 0.5) < 3 * rate.noise
    assert -6 * rate.noise < rate.edge <= 0.0


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    """[N - window + 1, window * F]: each row the flattened window that ends there."""
    return np.hstack([x[window - 1 - k : len(x) - k] for k in range(window)])


def _logistic_edge(x: np.ndarray, y: np.ndarray) -> float:
    """Test edge of a logistic regression fit on the first 70% of the rows."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = (x - x.mean(0)) / (x.std(0) + 1e-12)
    cut = int(len(x) * 0.7)
    with threadpool_limits(1):  # BLAS threads spin: on a busy 2-core machine, 10x slower
        model = LogisticRegression(C=0.05, max_iter=2000).fit(x[:cut], y[:cut])
    share = y[cut:].mean()
    return float((model.predict(x[cut:]) == y[cut:]).mean() - max(share, 1 - share))


def test_the_needle_needs_the_volume_group_and_a_48_bar_window() -> None:
    problem = make_problem("needle", 6000, seed=2)
    bars = load_bars(problem.bars, name="needle")
    prices = ["ret_1", "ret_12", "bar_body", "zscore_10"]  # a few of the returns group
    frame = build_features(bars, _group("volume") + prices, use_cache=False)
    start = len(bars) - len(frame)
    up, bayes = problem.up[start:-1], problem.bayes_rate(slice(start + 64, -1)).expected_edge
    volume = frame[_group("volume")].to_numpy()[:-1]
    returns = frame[prices].to_numpy()[:-1]

    def edge(x: np.ndarray, window: int) -> float:
        return _logistic_edge(_windows(x, window), up[window - 1 :])

    assert LAG == 47
    assert edge(volume, 48) > 0.6 * bayes  # the window holds row t - 47
    assert edge(volume, 32) < 0.2 * bayes  # it does not
    assert edge(returns, 48) < 0.2 * bayes  # prices never see volume


def test_the_interaction_needs_volume_and_price_together() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    problem = make_problem("interaction", 8000, seed=4)
    bars = load_bars(problem.bars, name="interaction")
    names = ["volume_z_20", "volume_ratio_20", "ret_12", "zscore_10"]
    frame = build_features(bars, names, use_cache=False)
    start = len(bars) - len(frame)
    up = problem.up[start:-1]
    bayes = problem.bayes_rate(slice(start, -1)).expected_edge
    x = frame.to_numpy()[:-1]
    cut = int(len(x) * 0.7)

    def edge(cols: list[int]) -> float:
        model = HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=0)
        with threadpool_limits(1):  # OpenMP threads spin as BLAS threads do
            model.fit(x[:cut, cols], up[:cut])
        share = up[cut:].mean()
        return float((model.predict(x[cut:, cols]) == up[cut:]).mean() - max(share, 1 - share))

    assert edge([0, 1, 2, 3]) > 0.5 * bayes
    assert edge([0, 1]) < 0.2 * bayes  # volume alone
    assert edge([2, 3]) < 0.2 * bayes  # price alone
