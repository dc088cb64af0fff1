"""One annualization: the bars per year that annualize a trial's Sharpe ratio are stored with
its scores, and the deflated Sharpe ratio divides exactly that back out."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial

from xtune.features import Bars, Dataset, DataSpec, load_bars, prepare
from xtune.models import LSTMConfig, Metrics, Params, Resources, Scores, TrainLog
from xtune.models._evaluate import score
from xtune.runtime.trading import SECONDS_PER_YEAR, bars_per_year
from xtune.search.record import DataRecord, Plan, TrialRecord, read
from xtune.search.report import luck

SPEC = DataSpec(("ret_1",), window=8)
PLAN = Plan(SPEC, Params(LSTMConfig(1, hidden=8)), ("ret_1",))
SKILL = (0.50, 0.52, 0.55, 0.50, 0.60, 0.53)  # share of right calls of each made-up trial


@pytest.fixture(scope="module")
def goog() -> tuple[Bars, Dataset]:
    pytest.importorskip("backtesting")
    bars = load_bars("sample:goog")
    return bars, prepare(bars, SPEC, use_cache=False)


def test_bars_per_year_are_bars_per_calendar_year(goog: tuple[Bars, Dataset]) -> None:
    bars, _ = goog
    years = (bars.index[-1] - bars.index[0]).total_seconds() / SECONDS_PER_YEAR
    assert bars_per_year(bars.index) == pytest.approx((len(bars) - 1) / years)
    assert 250 < bars_per_year(bars.index) < 253  # trading days, not the 365 of a 1-day median


def _trials(data: Dataset) -> list[tuple[Scores, np.ndarray]]:
    """Each made-up trial's validation scores and, by hand, its per-bar returns: long on up,
    short on down, no fee, on horizon-1 windows."""
    ends = data.folds[0].val
    truth = data.direction[ends.start : ends.stop]  # [N, 1]
    forward = data.returns[ends.start : ends.stop, 0].astype(np.float64)  # [N]
    rng = np.random.default_rng(0)
    out = []
    for p in SKILL:
        right = rng.random(len(truth)) < p
        predicted = np.where(right[:, None], truth, 1 - truth)  # [N, 1]
        outputs = (0.69, predicted, truth, rng.random((len(truth), 1)))
        scores = score(data, ends, outputs, fee=0.0, confident_share=0.3)
        pnl = np.where(predicted[:, 0] == 1, 1.0, -1.0) * forward
        out.append((scores, pnl))
    return out


def _study(bars: Bars, scores: list[Scores], drop_bars_per_year: bool = False) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for s in scores:
        attrs = TrialRecord(status="ok", plan=PLAN, data=DataRecord.of(bars),
                            resources=Resources(100, 0.1), feasible=True,
                            metrics=Metrics(s, TrainLog((), 1, 1, 0.1, ""))).to_attrs()  # fmt: skip
        if drop_bars_per_year:  # a trial stored by an xtune that did not record them
            del attrs["metrics/bars_per_year"]
        study.add_trial(create_trial(values=[s.accuracy, s.loss], user_attrs=attrs))
    return study


def test_the_deflated_sharpe_on_goog_is_the_hand_computed_one(goog: tuple[Bars, Dataset]) -> None:
    """Bailey and Lopez de Prado (2014), from the trials' per-bar returns: with N trials,
    SR_n = mean / std of trial n's per-bar returns, T of them, the Euler gamma g,

        SR0 = std_n(SR_n) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))
        DSR = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 + SR^2 / 2))   (skew 0, kurtosis 3)
    """
    bars, data = goog
    trials = _trials(data)
    study = _study(bars, [s for s, _ in trials])
    phi, g, n = NormalDist(), 0.5772156649015329, len(trials)
    per_bar = [float(pnl.mean() / pnl.std()) for _, pnl in trials]
    sr0 = float(np.std(per_bar, ddof=1)) * (
        (1 - g) * phi.inv_cdf(1 - 1 / n) + g * phi.inv_cdf(1 - 1 / (n * math.e))
    )
    for trial, sr, (scores, pnl) in zip(study.trials, per_bar, trials, strict=True):
        assert scores.bars_per_year == pytest.approx(bars_per_year(data.times))
        assert read(trial).metrics.val.bars_per_year == scores.bars_per_year  # type: ignore[union-attr]
        assert scores.sharpe == pytest.approx(sr * math.sqrt(scores.bars_per_year))
        t = len(pnl)
        dsr = phi.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 + sr * sr / 2))
        assert luck(study, trial).deflated_sharpe == pytest.approx(dsr, rel=1e-9, abs=1e-12)
    best = max(range(n), key=lambda i: per_bar[i])
    assert 0.5 < luck(study, study.trials[best]).deflated_sharpe < 1.0  # a real test


def test_a_trial_stored_without_bars_per_year_still_reads(goog: tuple[Bars, Dataset]) -> None:
    """It falls back to its bars' rows over their span: the same bars per calendar year."""
    bars, data = goog
    scores = [s for s, _ in _trials(data)]
    old, new = _study(bars, scores, drop_bars_per_year=True), _study(bars, scores)
    for a, b in zip(old.trials, new.trials, strict=True):
        assert read(a).metrics is not None and read(a).metrics.val.bars_per_year == 0.0  # type: ignore[union-attr]
        assert luck(old, a).bars_per_year == pytest.approx(bars_per_year(bars.index))
        assert luck(old, a).deflated_sharpe == pytest.approx(luck(new, b).deflated_sharpe, abs=1e-3)
