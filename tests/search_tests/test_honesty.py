"""The search's honesty on noise: its best validation score is reported beside its baseline,
and on the untouched test part the winner scores chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna

from tests.search_tests.studies import write_study
from xtune.features import load_bars, prepare
from xtune.models import fit_final
from xtune.search import (
    load_study_config,
    pareto_front,
    plan_from_json,
    resolve_storage,
    run_search,
    summary,
)


def test_the_winner_on_a_random_walk_scores_chance_on_test(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=20, source="sample:random_walk", sampler="tpe")
    config = load_study_config(study_file)
    study = run_search(config, resolve_storage(config))
    optuna_trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(optuna_trials) == 20

    info = summary(study)
    best_row = max(info["pareto_front"], key=lambda r: r["accuracy"])
    assert best_row["baseline_accuracy"] is not None  # reported together with its baseline

    best = next(t for t in pareto_front(study) if t.number == best_row["trial"])
    plan = plan_from_json(best.user_attrs["plan/json"])
    bars = load_bars("sample:random_walk")
    data = prepare(bars, plan.data)
    _, test, _, _ = fit_final(plan.params, data, best.user_attrs["train/best_epoch"])
    n = len(data.split.test)
    se = np.sqrt(0.25 / n)
    # The best of 20 noisy validation scores is optimistic; the test part is not fooled.
    assert abs(test.val_accuracy - 0.5) < 3 * se, (best_row["accuracy"], test.val_accuracy, n)
    assert abs(test.val_accuracy - test.baseline_accuracy) < 3 * se
