"""A trial over a cap is stored so that its sampler learns the cap exactly as before: PRUNED
(no values) where the sampler reads pruned trials' constraints, COMPLETE with worst values
where it reads COMPLETE trials only. Checked on each sampler with a toy objective (no
training): the parameters drawn are the same whichever way the sampler is told."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from xtune.search import StudyConfig, load_study_config, make_sampler
from xtune.search.states import over_cap_state

WORST = (0.0, 10.0)


def _draws(config: StudyConfig, state: TrialState) -> list[tuple[float, float]]:
    """16 trials of a toy objective with a cap on x + y; over-cap ones stored as ``state``."""
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler(config, seed=3)
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        trial.set_constraint("params", x + y - 1.0)  # over the cap where x + y > 1
        if x + y > 1.0:
            if state == TrialState.PRUNED:
                raise optuna.TrialPruned("over the cap")
            return WORST
        return 0.5 + 0.1 * x, 0.7 - 0.1 * y

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=16)
    assert any(t.state == state for t in study.trials if sum(t.params.values()) > 1.0)
    return [(t.params["x"], t.params["y"]) for t in study.trials]


@pytest.mark.parametrize(
    "sampler", ["random", "tpe", "nsga2", pytest.param("gp", marks=pytest.mark.slow)]
)  # gp: a Gaussian process fit per draw, tens of seconds on a busy 2-core machine
def test_the_sampler_draws_the_same_whether_over_cap_trials_are_pruned_or_complete(
    sampler: str, tmp_path: Path
) -> None:
    config = load_study_config(write_study(tmp_path, trials=16, sampler=sampler))
    stored = _draws(config, over_cap_state(sampler))
    assert stored == _draws(config, TrialState.COMPLETE)


def test_tpe_and_random_store_no_made_up_values() -> None:
    assert over_cap_state("tpe") == over_cap_state("random") == TrialState.PRUNED
    assert over_cap_state("gp") == over_cap_state("nsga2") == TrialState.COMPLETE
