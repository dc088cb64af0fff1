"""The search end to end, through the real CLI, on the embedded journal file and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.cli import xtune as run_xtune
from tests.search_tests.studies import write_study
from xtune.features import load_bars
from xtune.search import (
    StudySummary,
    load_study_config,
    open_storage,
    pareto_front,
    read,
    resolve_storage,
)
from xtune.search.states import is_over_cap, ran_in_full
from xtune.settings import Settings

pytestmark = pytest.mark.slow


def xtune(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_xtune(*args, env=env)


def _study(path: Path, storage: str | None = None) -> optuna.Study:
    config = load_study_config(path)
    url = resolve_storage(config, storage, Settings())
    return optuna.load_study(study_name=config.study.name, storage=open_storage(url))


def _check_finished_study(study: optuna.Study, budget: int) -> None:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert budget <= sum(map(ran_in_full, complete)) <= budget + 1  # at most workers - 1 over
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    for t in complete:
        r = read(t)
        assert r.data is not None and r.data.sha256 and r.plan is not None and r.plan.data.features
        assert set(t.constraints) == {"params", "latency_ms", "features_min", "features_max"}
        assert r.resources is not None and r.resources.params > 0
        if r.status == "ok":
            assert r.metrics is not None and r.metrics.val.baseline > 0.4


@pytest.mark.parametrize("workers", [1, 2])
def test_search_status_replay_on_the_embedded_storage(tmp_path: Path, workers: int) -> None:
    study_file = write_study(tmp_path, trials=4)
    result = xtune("search", str(study_file), "--workers", str(workers))
    assert result.returncode == 0, result.stderr
    assert "feasible Pareto front" in result.stdout
    assert (tmp_path / f"{load_study_config(study_file).study.name}.journal").exists()
    study = _study(study_file)
    _check_finished_study(study, 4)

    status = xtune("status", str(study_file), "--format", "json")
    assert status.returncode == 0, status.stderr
    info = StudySummary.from_json(status.stdout)
    assert info.states["COMPLETE"] >= 4
    assert info.pareto_front and info.plots
    pngs = [p for p in info.plots if p.endswith(".png")]
    assert {Path(p).stem for p in pngs} >= {"pareto_front", "history", "feature_usage"}
    assert all(Path(p).stat().st_size > 1000 for p in pngs)

    number = info.pareto_front[0].trial
    if workers == 1:
        again = xtune("replay", str(study_file), "--trial", str(number))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "reproduced" in again.stdout
    else:  # the same, for a script
        again = xtune("replay", str(study_file), "--trial", str(number), "--format", "json")
        assert again.returncode == 0, again.stdout + again.stderr
        replayed = json.loads(again.stdout)
        assert replayed["reproduced"] and replayed["max_difference"] <= replayed["tolerance"]
        assert replayed["stored"].keys() == replayed["replayed"].keys() >= {"accuracy", "loss"}
    # every trained trial uploaded its learning curve
    artifacts = list((tmp_path / f"{study.study_name}.artifacts").rglob("*"))
    assert any(p.is_file() for p in artifacts)


def test_search_resumes_and_respects_the_budget(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=2)
    assert xtune("search", str(study_file)).returncode == 0
    again = xtune("search", str(study_file))  # budget reached: nothing more runs
    assert again.returncode == 0
    assert sum(map(ran_in_full, _study(study_file).trials)) == 2
    more = xtune("search", str(study_file), "--n-trials", "1")
    assert more.returncode == 0
    assert sum(map(ran_in_full, _study(study_file).trials)) == 3


def test_a_tight_cap_is_never_violated_on_the_front(tmp_path: Path) -> None:
    """With max_params so low that many trials are over it, no feasible Pareto trial is over
    any cap, and infeasible trials are PRUNED (random sampling) with no values and no training."""
    study_file = write_study(tmp_path, trials=10, max_params=3000, sampler="random")
    assert xtune("search", str(study_file)).returncode == 0
    study = _study(study_file)
    infeasible = [t for t in study.trials if read(t).feasible is False]
    assert len(infeasible) >= 3, [read(t).resources for t in study.trials]
    for t in infeasible:
        assert t.state == TrialState.PRUNED and t.values is None and is_over_cap(t)
        assert max(t.constraints.values()) > 0
        assert read(t).status == "infeasible" and read(t).metrics is None
    config = load_study_config(study_file)
    front = pareto_front(study)
    assert front
    for t in front:
        resources = read(t).resources
        assert resources is not None
        assert resources.params <= config.caps.max_params
        assert resources.latency_ms <= config.caps.max_latency_ms
        width = t.params.get("lstm/hidden", t.params.get("xlstm/embed"))
        assert width <= config.caps.max_width


def test_ctrl_c_marks_the_running_trial_failed_and_keeps_finished_ones(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, trials=50, families='["xlstm"]', window="[16, 48]")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtune", "search", str(study_file)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip
    journal = tmp_path / f"{load_study_config(study_file).study.name}.journal"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until one trial finished and the next one runs
        time.sleep(0.5)
        if journal.exists():
            trials = _study(study_file).get_trials(deepcopy=False)
            if (
                any(t.state == TrialState.COMPLETE for t in trials)
                and trials[-1].state == TrialState.RUNNING
            ):
                break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    trials = _study(study_file).get_trials(deepcopy=False)
    assert [t for t in trials if t.state == TrialState.COMPLETE]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert trials[-1].state == TrialState.FAIL


def test_an_enqueued_trial_beyond_the_caps_is_refused(tmp_path: Path) -> None:
    from xtune.search import SeedError, create_study, enqueue
    from xtune.search.config import EnqueueEntry

    study_file = write_study(tmp_path)
    study_file.write_text(study_file.read_text().replace("max_width = 32", "max_width = 16"))
    config = load_study_config(study_file)
    bars = load_bars(study_file.parent / "bars.csv")
    study, _ = create_study(config, resolve_storage(config, None, Settings()), Settings(), bars)
    big = EnqueueEntry("big", {"family": "lstm", "lstm/hidden": 24, "lstm/layers": 1})
    with pytest.raises(
        SeedError, match=r'"lstm/hidden" = 24: beyond the hard caps.*max_width = 16'
    ):
        enqueue(study, config, big)
    small = EnqueueEntry("small", {"family": "lstm", "lstm/hidden": 16, "lstm/layers": 1})
    assert enqueue(study, config, small)
    assert not enqueue(study, config, small)  # already there: not queued twice
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def test_bad_bars_fail_before_any_trial(tmp_path: Path) -> None:
    study_file = write_study(tmp_path)
    text = (tmp_path / "bars.csv").read_text().splitlines()
    text[100] = text[100].replace(",", ",-", 1)  # a negative open price on one line
    (tmp_path / "bars.csv").write_text("\n".join(text))
    result = xtune("search", str(study_file))
    assert result.returncode == 2
    assert "non-positive" in result.stderr and "bars.csv" in result.stderr
    assert not list(tmp_path.glob("*.journal"))


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [1, 2])
def test_search_on_postgresql(tmp_path: Path, pg_url: str, workers: int) -> None:
    from sqlalchemy.engine import make_url

    secret = make_url(pg_url).set(password="s3cret-word").render_as_string(hide_password=False)
    study_file = write_study(tmp_path, trials=4)
    result = xtune("search", str(study_file), "--storage", secret, "--workers", str(workers))
    assert result.returncode == 0, result.stderr
    assert "s3cret-word" not in result.stdout + result.stderr  # passwords never printed
    assert "***" in result.stdout
    study = _study(study_file, pg_url)
    try:
        _check_finished_study(study, 4)
        status = xtune(
            "status", str(study_file), "--storage", secret, "--format", "json", "--no-plots"
        )
        assert status.returncode == 0 and "s3cret-word" not in status.stdout + status.stderr
        assert StudySummary.from_json(status.stdout).pareto_front
        assert any(p.is_file() for p in (tmp_path / "artifacts").rglob("*"))  # XTUNE_ARTIFACTS
    finally:
        optuna.delete_study(study_name=study.study_name, storage=open_storage(pg_url))


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    study_file = write_study(tmp_path)
    result = xtune(
        "search", str(study_file), "--storage", "postgresql+psycopg2://u:hunter2@127.0.0.1:1/x"
    )
    assert result.returncode == 2
    assert "cannot open storage" in result.stderr and "hunter2" not in result.stderr
