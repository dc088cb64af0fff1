"""Early stopping for multi-objective trials: the rule, the judge, and a search that uses it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from xtune.models import Scores, Stopped
from xtune.search import StudyError, load_study_config, pareto_front, read, run_search
from xtune.search._replay import trained_record
from xtune.search.budget import full_runs, spent
from xtune.search.pruning import (
    MIN_TRIALS,
    Pruner,
    better_share,
    front_ranks,
    planned_share,
    rung_epochs,
    share_done,
)
from xtune.search.record import TrialRecord, rungs_of, status_of, write
from xtune.search.report import summary
from xtune.search.states import is_stopped
from xtune.settings import Settings

MAX_MIN = (1.0, -1.0)  # accuracy up, loss down


def _scores(accuracy: float, loss: float) -> Scores:
    return Scores(accuracy, loss, 0.5, (accuracy,), 0.0, 100)


def test_front_ranks_peel_non_dominated_fronts() -> None:
    points = [(0.60, 0.60), (0.55, 0.65), (0.58, 0.62), (0.50, 0.70), (0.62, 0.66)]
    # (0.60,0.60) and (0.62,0.66) are the front; (0.58,0.62) is dominated only by (0.60,0.60);
    # (0.55,0.65) by (0.58,0.62) too; (0.50,0.70) by everyone.
    assert front_ranks(points, MAX_MIN) == [0, 2, 1, 3, 0]


def test_better_share_counts_the_others_in_strictly_better_fronts() -> None:
    others = [(0.60, 0.60), (0.62, 0.66), (0.58, 0.62), (0.50, 0.70)]
    assert better_share((0.61, 0.61), others, MAX_MIN) == 0.0  # on the front
    assert better_share((0.59, 0.61), others, MAX_MIN) == 0.5  # front 1: two above it
    assert better_share((0.40, 0.80), others, MAX_MIN) == 1.0
    assert better_share((0.40, 0.80), [], MAX_MIN) == 0.0


def test_rung_epochs_are_geometric_and_below_the_last_epoch() -> None:
    assert rung_epochs(2) == frozenset()
    assert rung_epochs(6) == {2}
    assert rung_epochs(20) == {2, 6, 18}


def test_a_stopped_trial_costs_the_share_of_training_it_did() -> None:
    assert planned_share("fold0/epoch2", epochs=12, folds=1) == pytest.approx(2 / 12)
    assert planned_share("fold0/epoch6", epochs=12, folds=3) == pytest.approx(6 / 36)
    assert planned_share("fold1", epochs=12, folds=3) == pytest.approx(2 / 3)
    # Until MIN_TRIALS have trained, the planned share; then the compute it used, measured
    # against the mean trained trial (which rarely runs all its planned epochs).
    few = [10.0] * (MIN_TRIALS - 1)
    assert share_done("fold0/epoch2", 12, 3, seconds=3.0, trained=few) == pytest.approx(2 / 36)
    trained = [8.0, 12.0, 10.0, 6.0, 14.0]
    assert share_done("fold0/epoch2", 12, 3, seconds=3.0, trained=trained) == pytest.approx(0.3)
    assert share_done("fold1", 12, 3, seconds=25.0, trained=trained) == 1.0  # never above one


def _study_with_rung(values: list[tuple[float, float]], rung: str = "fold0/epoch2") -> optuna.Study:
    """A study whose trials each reached ``rung`` with the given values (stored as the judge
    stores them, without judging them)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for accuracy, loss in values:
        trial = study.ask()
        write(trial, TrialRecord(rungs={rung: (accuracy, loss)}))
        study.tell(trial, (accuracy, loss))
    return study


def test_a_dominated_trial_is_stopped_at_an_early_rung_and_a_good_one_is_not() -> None:
    study = _study_with_rung([(0.52 + 0.01 * i, 0.69 - 0.002 * i) for i in range(6)])
    bad = Pruner(study.ask(), ("accuracy", "loss"), MAX_MIN)
    with pytest.raises(Stopped) as stop:
        bad("fold0/epoch2", _scores(0.51, 0.70))
    assert stop.value.rung == "fold0/epoch2" and stop.value.scores.accuracy == 0.51
    assert "100% of the 6 trials that reached it" in stop.value.reason
    good = study.ask()
    Pruner(good, ("accuracy", "loss"), MAX_MIN)("fold0/epoch2", _scores(0.60, 0.67))
    # Its value is stored on the trial, so the trials after it compare with it too.
    assert rungs_of(study._storage.get_trial(good._trial_id)) == {"fold0/epoch2": (0.60, 0.67)}


def test_a_fold_rung_judges_harder_than_an_epoch_rung() -> None:
    """After a whole fold the scores say more: outside the best third is stopped there, while
    at an epoch rung only the worse half is."""
    chain = [(0.60 - 0.01 * i, 0.60 + 0.01 * i) for i in range(6)]  # fronts 0, 1, ..., 5
    half = _scores(0.575, 0.625)  # 3 of the 6 rank better
    third = _scores(0.585, 0.615)  # 2 of the 6 rank better
    for rung, stopped in (("fold0/epoch2", (half,)), ("fold0", (half, third))):
        for point in (half, third):
            judge = Pruner(_study_with_rung(chain, rung).ask(), ("accuracy", "loss"), MAX_MIN)
            if point in stopped:
                with pytest.raises(Stopped, match=f"{better_share_pct(point, chain)} of the 6"):
                    judge(rung, point)
            else:
                judge(rung, point)  # goes on


def better_share_pct(point: Scores, others: list[tuple[float, float]]) -> str:
    return f"{better_share((point.accuracy, point.loss), others, MAX_MIN):.0%}"


def test_nothing_is_judged_before_enough_trials_reached_the_rung() -> None:
    study = _study_with_rung([(0.60, 0.60)] * (MIN_TRIALS - 1))
    Pruner(study.ask(), ("accuracy", "loss"), MAX_MIN)("fold0/epoch2", _scores(0.40, 0.80))
    # ...and another rung's values do not count for this one.
    Pruner(study.ask(), ("accuracy", "loss"), MAX_MIN)("fold0/epoch6", _scores(0.40, 0.80))


def test_the_search_section_takes_booleans_only(tmp_path: Path) -> None:
    path = write_study(tmp_path)
    path.write_text(path.read_text().replace("early_stop = true", 'early_stop = "yes"'))
    with pytest.raises(StudyError, match=r"\[search\] early_stop must be true or false"):
        load_study_config(path)
    path.write_text(path.read_text().replace('early_stop = "yes"', "early_stopping = true"))
    with pytest.raises(StudyError, match="Did you mean 'early_stop'"):
        load_study_config(path)


@pytest.mark.slow
def test_stopped_trials_teach_the_sampler_but_never_reach_the_front(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path, trials=10, epochs=7))
    study = run_search(config, str(tmp_path / "s.journal"), Settings())
    stopped = [t for t in study.trials if is_stopped(t)]
    assert stopped, "with rungs at epochs 2 and 6, some of these trials should rank low"
    # A stopped trial costs the budget the time it took, against the trials trained before it.
    shares = [read(t).share or 0.0 for t in stopped]
    for t, share in zip(stopped, shares, strict=True):
        before = [u.duration.total_seconds() for u in study.trials  # type: ignore[union-attr]
                  if status_of(u) == "ok" and u.datetime_complete < t.datetime_start]  # fmt: skip
        rung = (read(t).reason or "").split()[3].rstrip(":")
        took = t.duration.total_seconds()  # type: ignore[union-attr]
        # the share was taken just before the trial's end was stamped
        assert 0 < share <= share_done(rung, 7, 1, took, before) + 1e-9
        assert share >= share_done(rung, 7, 1, 0.9 * took - 0.05, before)
    assert full_runs(study) + sum(shares) == pytest.approx(spent(study))
    assert 10 <= spent(study) < 11 and full_runs(study) < 10
    counts, by_status = summary(study), Counter(read(t).status for t in study.trials)
    assert counts.stopped == by_status["stopped"] == len(stopped) > 0
    assert counts.infeasible == by_status["infeasible"]
    assert counts.trained + counts.diverged + counts.stopped + counts.infeasible == sum(
        counts.states.get(state, 0) for state in ("COMPLETE", "PRUNED")
    )
    assert counts.budget_spent == pytest.approx(spent(study), abs=1e-3)
    front = {t.number for t in pareto_front(study)}
    for t in stopped:
        record = read(t)
        assert t.state == TrialState.COMPLETE and t.number not in front
        assert record.reason is not None and record.reason.startswith("stopped early at fold0/")
        rung = record.reason.split()[3].rstrip(":")
        assert tuple(t.values) == record.rungs[rung] if record.rungs else False
        with pytest.raises(Exception, match="was not trained"):
            trained_record(study, t.number)  # replay and export refuse it


@pytest.mark.slow
def test_with_early_stop_off_no_trial_is_judged(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path, trials=6, epochs=7, early_stop=False))
    assert not config.search.early_stop
    config = replace(config, study=replace(config.study, name="off"))
    study = run_search(config, str(tmp_path / "s.journal"), Settings())
    assert not any(is_stopped(t) or rungs_of(t) for t in study.trials)
