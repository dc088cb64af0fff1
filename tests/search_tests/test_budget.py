"""The budget is spent on trained trials; a trial that faults fails alone; time limits hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from tests.search_tests.test_search import _study, xtune
from xtune.search import load_study_config, read, resolve_storage, run_search
from xtune.search.states import is_over_cap, is_trained, ran_in_full
from xtune.settings import Settings

pytestmark = pytest.mark.slow


def test_a_tight_cap_on_daily_bars_still_trains_the_whole_budget(tmp_path: Path) -> None:
    """Tried as a new user would: before, 7 of 8 trials broke max_params and 1 model trained."""
    study_file = write_study(tmp_path, trials=8, max_params=6000, source="sample:goog",
                             families='["lstm", "xlstm"]')  # fmt: skip
    result = xtune("search", str(study_file))
    assert result.returncode == 0, result.stderr
    trials = _study(study_file).trials
    assert sum(map(ran_in_full, trials)) == 8
    infeasible = [t for t in trials if is_over_cap(t)]
    assert infeasible, "the cap should have refused some draws"  # stored, so the sampler learns
    assert all(max(t.constraints.values()) > 0 for t in infeasible)
    assert "trained 8" in result.stdout


def test_a_space_that_never_fits_its_caps_stops_naming_the_cap(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=1, max_params=50)
    result = xtune("search", str(study_file))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "the last 20 configurations drawn all broke a cap: params" in result.stderr
    assert len(_study(study_file).trials) == 20


def test_the_infeasible_streak_scales_with_this_runs_budget_not_the_study_files(
    tmp_path: Path,
) -> None:
    """`--n-trials 1` on a 100-trial study gives up after 20 draws, not 2,000."""
    from xtune.search.budget import InfeasibleSpace

    config = load_study_config(write_study(tmp_path, trials=100, max_params=50))
    storage = resolve_storage(config, None, Settings())
    with pytest.raises(InfeasibleSpace, match="the last 20 configurations drawn all broke"):
        run_search(config, storage, Settings(), n_trials=1)


def test_an_out_of_memory_trial_fails_alone_and_the_worker_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xtune.search import objective

    real, calls = objective.train_and_evaluate, []

    def first_one_runs_out_of_memory(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(objective, "train_and_evaluate", first_one_runs_out_of_memory)
    config = load_study_config(write_study(tmp_path, trials=2))
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and read(failed[0]).status == "failed"
    assert "OutOfMemoryError: CUDA out of memory" in (read(failed[0]).reason or "")
    assert sum(map(ran_in_full, study.trials)) == 2  # the worker went on to the budget


def test_training_that_fails_every_time_stops_the_search_naming_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed trials spend no budget; before, a search whose every training raised (a bug in
    a custom feature) drew new trials forever."""
    from xtune.search import objective
    from xtune.search.budget import FAULT_STREAK, TrainingKeepsFailing

    def always_fails(*args: object, **kwargs: object) -> object:
        raise ValueError("my_indicator: operands could not be broadcast together")

    monkeypatch.setattr(objective, "train_and_evaluate", always_fails)
    study_file = write_study(tmp_path, trials=2)
    config = load_study_config(study_file)
    storage = resolve_storage(config, None, Settings())
    with pytest.raises(TrainingKeepsFailing, match="ValueError: my_indicator: operands") as err:
        run_search(config, storage, Settings())
    assert f"the last {FAULT_STREAK} trials all failed in training" in str(err.value)
    trials = _study(study_file).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == FAULT_STREAK and not any(map(ran_in_full, trials))  # the rest: over a cap


def test_a_study_can_optimize_what_traders_judge_by(tmp_path: Path) -> None:
    objectives = '["edge", "max_drawdown", "confident_accuracy"]'
    config = load_study_config(write_study(tmp_path, trials=2, objectives=objectives))
    assert config.directions == ["maximize", "minimize", "maximize"]
    study = run_search(config, resolve_storage(config, None, Settings()), Settings())
    for trial in study.trials:
        if is_trained(trial):
            val = read(trial).metrics.val  # type: ignore[union-attr]
            assert trial.values == [val.edge, val.max_drawdown, val.confident_accuracy]
            assert 0 < val.coverage < 1 and 0 <= val.max_drawdown <= 1
