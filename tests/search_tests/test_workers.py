"""Workers on PostgreSQL: a global budget, a killed worker's trial retried, nothing left RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.polling import owned_running, states, wait_for
from tests.search_tests.studies import write_study
from xtune.features import load_bars
from xtune.search import StudyConfig, create_study, load_study_config, open_storage, read, sweep
from xtune.search.states import ran_in_full
from xtune.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _cleanup(name: str, url: str) -> None:
    optuna.delete_study(study_name=name, storage=open_storage(url))


def _retried(trial: optuna.trial.FrozenTrial, trials: list[optuna.trial.FrozenTrial]) -> bool:
    return any(
        read(t).retry_of == trial.number or t.system_attrs.get("failed_trial") == trial.number
        for t in trials
    )


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize"
)
def test_sweep_closes_the_no_heartbeat_hole(tmp_path: Path, pg_url: str) -> None:
    """A worker that dies before its first heartbeat leaves a RUNNING trial Optuna never fails."""
    config = load_study_config(write_study(tmp_path))
    study, _ = create_study(config, pg_url, Settings(), load_bars(tmp_path / "bars.csv"))
    try:
        orphan = study.ask()  # RUNNING, parameters drawn, no heartbeat ever sent
        orphan.suggest_categorical("family", ["lstm"])
        storage = open_storage(pg_url)
        assert sweep(study, storage, grace_s=3600) == []  # too young: may still be alive
        assert sweep(study, storage, grace_s=0) == [orphan.number]
        trials = study.get_trials()
        assert trials[orphan.number].state == TrialState.FAIL
        assert read(trials[orphan.number]).status == "orphaned"
        (retry,) = [t for t in trials if t.state == TrialState.WAITING]
        assert read(retry).retry_of == orphan.number
        assert retry.system_attrs["fixed_params"] == {"family": "lstm"}
    finally:
        _cleanup(config.study.name, pg_url)


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize"
)
def test_on_postgresql_a_dead_local_owner_is_swept_before_its_heartbeat_is_stale(
    tmp_path: Path, pg_url: str
) -> None:
    """A fresh heartbeat does not keep a trial whose owner on this machine is gone: waiting
    for it to go stale could outlast the study's last worker. A live owner's trial stays."""
    from dataclasses import replace

    from xtune.search.record import TrialRecord, Worker, write

    config = load_study_config(write_study(tmp_path))
    study, _ = create_study(config, pg_url, Settings(), load_bars(tmp_path / "bars.csv"))
    try:
        storage = open_storage(pg_url)
        dead, alive = study.ask(), study.ask()
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        write(dead, TrialRecord(status="running", worker=replace(Worker.here(1), pid=gone.pid)))
        write(alive, TrialRecord(status="running", worker=Worker.here(seed=1)))
        for t in (dead, alive):
            storage.record_heartbeat(t._trial_id)
        assert sweep(study, storage, grace_s=3600) == [dead.number]
        assert sweep(study, storage, grace_s=0) == []  # this process: alive, and beating
    finally:
        _cleanup(config.study.name, pg_url)


def test_four_workers_reach_the_global_budget(tmp_path: Path, pg_url: str) -> None:
    study_file = write_study(tmp_path, trials=8, storage=pg_url)
    config = load_study_config(study_file)
    result = subprocess.run([sys.executable, "-m", "xtune", "search", str(study_file), "--workers", "4"],
                            capture_output=True, text=True, timeout=900, env=os.environ | {"COLUMNS": "200"})  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr
        trials = optuna.load_study(
            study_name=config.study.name, storage=open_storage(pg_url)
        ).get_trials()
        trained = [t for t in trials if ran_in_full(t)]
        assert 8 <= len(trained) <= 8 + 3  # at most workers - 1 over the budget
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    finally:
        _cleanup(config.study.name, pg_url)


def _start_two_workers(
    tmp_path: Path, pg_url: str, trials: int
) -> tuple[StudyConfig, subprocess.Popen[str]]:
    """`xtune search --workers 2` on slow-ish xLSTM trials, with a 1 s heartbeat and 4 s grace."""
    study_file = write_study(
        tmp_path, trials=trials, storage=pg_url, families='["xlstm"]', window="[16, 48]"
    )
    env = os.environ | {"COLUMNS": "200", "XTUNE_HEARTBEAT_S": "1", "XTUNE_GRACE_S": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "xtune", "search", str(study_file), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    return load_study_config(study_file), proc


def test_a_killed_worker_loses_nothing_and_its_trial_is_retried(
    tmp_path: Path, pg_url: str
) -> None:
    config, proc = _start_two_workers(tmp_path, pg_url, trials=6)
    try:
        trials = wait_for(
            config, pg_url, lambda ts: bool(owned_running(ts) and states(ts, TrialState.COMPLETE))
        )
        owner = read(owned_running(trials)[0]).worker
        assert owner is not None
        victim = owner.pid  # the process running that trial
        os.kill(victim, signal.SIGKILL)  # mid-trial, no chance to clean up
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        trials = optuna.load_study(
            study_name=config.study.name, storage=open_storage(pg_url)
        ).get_trials()
        assert not states(trials, TrialState.RUNNING, TrialState.WAITING)
        failed = states(trials, TrialState.FAIL)
        assert failed, (victim, out[-2000:], [(t.number, t.state.name) for t in trials])
        for t in failed:  # retried with the same parameters, and the retry ran
            assert _retried(t, trials) or not t.params
        assert len(states(trials, TrialState.COMPLETE)) >= 6  # the other worker went on
    finally:
        if proc.poll() is None:
            proc.kill()
        _cleanup(config.study.name, pg_url)


def _restart_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"],
        check=True,
        timeout=120,
    )


def test_workers_survive_a_postgresql_restart(tmp_path: Path, pg_url: str) -> None:
    if not Path("/etc/postgresql").is_dir() or os.geteuid() != 0:
        pytest.skip("needs a local PostgreSQL cluster this test may restart (pg_ctlcluster, root)")
    config, proc = _start_two_workers(tmp_path, pg_url, trials=8)
    try:
        trials = wait_for(
            config,
            pg_url,
            lambda ts: (
                len(states(ts, TrialState.COMPLETE)) >= 2 and bool(states(ts, TrialState.RUNNING))
            ),
        )
        before = {t.number for t in states(trials, TrialState.COMPLETE)}
        _restart_postgres()  # mid-trial, while both workers hold connections
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        # every worker rode out the restart (Optuna still logs the cut-off trial's traceback)
        assert "exited with code" not in err, err[-3000:]
        trials = optuna.load_study(
            study_name=config.study.name, storage=open_storage(pg_url)
        ).get_trials()
        complete = {t.number for t in states(trials, TrialState.COMPLETE)}
        assert before <= complete  # nothing finished is lost
        assert len(complete) >= 8
        assert not states(trials, TrialState.RUNNING, TrialState.WAITING)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["pg_isready", "-h", "127.0.0.1", "-t", "30"], check=False)
        _cleanup(config.study.name, pg_url)
