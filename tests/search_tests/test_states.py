"""One vocabulary of trial states: ``status``, the front, the budget and export agree on what a
diverged, stopped, over-a-cap, refused or failed trial is."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from tests.cli import xtune
from tests.search_tests.studies import write_study
from xtune.export.pick import ExportError, pick_trial
from xtune.features import Bars, DataSpec, load_bars
from xtune.models import LSTMConfig, Metrics, Params, Resources, Scores, TrainLog
from xtune.search import (
    StudySummary,
    create_study,
    load_study_config,
    pareto_front,
    resolve_storage,
)
from xtune.search.budget import spent
from xtune.search.record import DataRecord, Plan, TrialRecord
from xtune.search.report import summary
from xtune.search.states import (
    is_diverged,
    is_failed,
    is_over_cap,
    is_refused,
    is_stopped,
    is_trained,
    is_tried,
    ran_in_full,
)
from xtune.settings import Settings

PLAN = Plan(DataSpec(("ret_1",), window=8), Params(LSTMConfig(1, hidden=8)), ("returns",))


def _failed(record: TrialRecord) -> optuna.trial.FrozenTrial:
    return create_trial(state=TrialState.FAIL, user_attrs=record.to_attrs())


def _metrics(accuracy: float, reason: str = "") -> Metrics:
    loss = math.inf if reason else 0.68
    return Metrics(
        Scores(accuracy, loss, 0.5, (accuracy,), 0.3, 100), TrainLog((), 2, 2, 0.1, "", reason)
    )


def _add_one_of_each(study: optuna.Study, data: DataRecord) -> None:
    """Trials 0..5: trained, diverged, stopped early, over a cap, refused, failed."""
    base = TrialRecord(plan=PLAN, data=data, resources=Resources(500, 0.1), feasible=True)
    ok = TrialRecord(status="ok", metrics=_metrics(0.56))
    diverged = TrialRecord(status="diverged", reason="non-finite loss", metrics=_metrics(0.0, "x"))
    stopped = TrialRecord(
        status="stopped", reason="stopped early", share=0.25, metrics=_metrics(0.9)
    )
    over = TrialRecord(
        status="infeasible", reason="over the cap: params; not trained", feasible=False
    )
    for part, values in ((ok, [0.56, 0.68]), (diverged, [0.0, 10.0]), (stopped, [0.9, 0.1]),
                         (over, None)):  # fmt: skip
        study.add_trial(_merged(base, part, values))
    study.add_trial(_failed(TrialRecord(status="refused", reason="beyond the caps")))
    study.add_trial(_failed(TrialRecord(status="failed", reason="RuntimeError: x")))


def _merged(
    base: TrialRecord, part: TrialRecord, values: list[float] | None
) -> optuna.trial.FrozenTrial:
    """COMPLETE with ``values``; PRUNED without (a trial over a cap, as tpe and random store it)."""
    attrs = base.to_attrs() | part.to_attrs()
    return create_trial(
        state=TrialState.COMPLETE if values else TrialState.PRUNED, values=values,
        user_attrs=attrs, constraints={"params": 0.5 if part.status == "infeasible" else -0.5},
    )  # fmt: skip


def test_each_state_has_one_predicate(bars: Bars) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    _add_one_of_each(study, DataRecord.of(bars))
    trials = study.get_trials()
    table = [
        (is_trained(t), is_diverged(t), is_stopped(t), is_over_cap(t), is_refused(t), is_failed(t))
        for t in trials
    ]
    assert table == [tuple(i == j for j in range(6)) for i in range(6)]  # exactly one each
    assert [ran_in_full(t) for t in trials] == [True, True, False, False, False, False]
    assert [is_tried(t) for t in trials] == [True, True, True, False, False, False]
    assert spent(study) == pytest.approx(2.25)  # trained + diverged, and the stopped one's share
    assert [t.number for t in pareto_front(study)] == [0]
    info = summary(study)
    counts = {
        k: getattr(info, k)
        for k in ("trained", "diverged", "stopped", "infeasible", "refused", "failed")
    }
    assert counts == dict.fromkeys(counts, 1)
    assert info.pareto_front[0].luck.trials == 3  # trained, diverged, stopped
    assert info.states == {"COMPLETE": 3, "PRUNED": 1, "FAIL": 2}
    with pytest.raises(ExportError, match="trial 1 was not trained"):
        pick_trial(study, number=1, force=True)  # diverged: nothing to export


def test_an_over_cap_trial_stored_complete_is_still_over_a_cap(bars: Bars) -> None:
    """GP and NSGA-II studies (and older ones) keep over-cap trials COMPLETE with worst values."""
    base = TrialRecord(plan=PLAN, data=DataRecord.of(bars), resources=Resources(500, 0.1))
    over = TrialRecord(status="infeasible", reason="over the cap: params", feasible=False)
    trial = _merged(base, over, [0.0, 10.0])
    assert trial.state == TrialState.COMPLETE and is_over_cap(trial)
    assert not (is_trained(trial) or is_tried(trial) or ran_in_full(trial))


def test_status_json_counts_a_diverged_trial_as_diverged_not_trained(tmp_path: Path) -> None:
    study_file = write_study(tmp_path)
    config = load_study_config(study_file)
    bars = load_bars(str(tmp_path / "bars.csv"))
    study, _ = create_study(config, resolve_storage(config, None, Settings()), Settings(), bars)
    _add_one_of_each(study, DataRecord.of(bars))
    result = xtune("status", str(study_file), "--format", "json", "--no-plots")
    assert result.returncode == 0, result.stderr
    info = StudySummary.from_json(result.stdout)
    assert (info.trained, info.diverged, info.stopped) == (1, 1, 1), info
    assert (info.infeasible, info.refused, info.failed) == (1, 1, 1), info
    assert [row.trial for row in info.pareto_front] == [0]
    text = xtune("status", str(study_file), "--no-plots").stdout
    assert "trained 1, diverged 1, stopped early 1" in " ".join(text.split()), text
