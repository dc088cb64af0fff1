"""The search's honesty on noise: its best validation score is reported beside its baseline,
and on the untouched test part the winner scores chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.search_tests.studies import write_study
from xtune.features import CATALOG, load_bars
from xtune.models import fit_final
from xtune.search import (
    load_study_config,
    pareto_front,
    read,
    resolve_storage,
    run_search,
    summary,
    trial_inputs,
)
from xtune.search.states import ran_in_full
from xtune.settings import Settings

pytestmark = pytest.mark.slow


def test_the_winner_on_a_random_walk_scores_chance_on_test(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=20, source="sample:random_walk", sampler="tpe")
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    assert sum(map(ran_in_full, study.trials)) == 20

    info = summary(study)
    best_row = max(info.pareto_front, key=lambda r: r.values["accuracy"])
    # and every front trial is called what it is: not distinguishable from picking luck
    assert all(row.luck.lucky for row in info.pareto_front), info.pareto_front
    assert all(row.luck.deflated_sharpe < 0.95 for row in info.pareto_front)

    best = next(t for t in pareto_front(study) if t.number == best_row.trial)
    record = read(best)
    assert record.metrics is not None
    _, params, data = trial_inputs(record, load_bars("sample:random_walk"), CATALOG)
    # reported together with its baseline: the majority share of its validation labels
    val = data.direction[data.folds[0].val.start : data.folds[0].val.stop, 0]
    assert best_row.baseline_accuracy == pytest.approx(np.bincount(val).max() / len(val))
    assert best_row.edge == pytest.approx(best_row.values["accuracy"] - best_row.baseline_accuracy)
    test = fit_final(params, data, record.metrics.log.best_epoch).test
    n = test.samples
    assert n == len(data.split.test)
    se = np.sqrt(0.25 / n)
    # The best of 20 noisy validation scores is optimistic; the test part is not fooled.
    assert abs(test.accuracy - 0.5) < 3 * se, (best_row.values["accuracy"], test.accuracy, n)
    assert abs(test.edge) < 3 * se


def test_the_best_trial_on_the_momentum_sample_is_not_called_luck(tmp_path: Path) -> None:
    """Positive control for the luck guard: a real (AR 0.15) momentum edge stands out."""
    from xtune.features.sample import synthetic_bars

    synthetic_bars(20_000, seed=9).to_csv(tmp_path / "bars.csv")
    config = load_study_config(write_study(tmp_path, trials=6, sampler="random"))
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    front = summary(study).pareto_front
    best = max(front, key=lambda r: r.edge)
    assert not best.luck.lucky, best
    assert best.edge > best.luck.edge_bar > best.luck.expected_best_edge > 0
