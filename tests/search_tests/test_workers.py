"""Workers on PostgreSQL: a global budget, a killed worker's trial retried, nothing left RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from xtune.search import create_study, load_study_config, open_storage, sweep

pytestmark = pytest.mark.postgres


def _cleanup(name: str, url: str) -> None:
    optuna.delete_study(study_name=name, storage=open_storage(url))


def _retried(trial: optuna.trial.FrozenTrial, trials: list[optuna.trial.FrozenTrial]) -> bool:
    return any(
        t.user_attrs.get("xtune/retry_of") == trial.number
        or t.system_attrs.get("failed_trial") == trial.number
        for t in trials
    )


def test_sweep_closes_the_no_heartbeat_hole(tmp_path: Path, pg_url: str) -> None:
    """A worker that dies before its first heartbeat leaves a RUNNING trial Optuna never fails."""
    config = load_study_config(write_study(tmp_path))
    study = create_study(config, pg_url)
    try:
        orphan = study.ask()  # RUNNING, parameters drawn, no heartbeat ever sent
        orphan.suggest_categorical("family", ["lstm"])
        storage = open_storage(pg_url)
        assert sweep(study, storage, grace_s=3600) == []  # too young: may still be alive
        assert sweep(study, storage, grace_s=0) == [orphan.number]
        trials = study.get_trials()
        assert trials[orphan.number].state == TrialState.FAIL
        assert trials[orphan.number].user_attrs["train/status"] == "orphaned"
        (retry,) = [t for t in trials if t.state == TrialState.WAITING]
        assert retry.user_attrs["xtune/retry_of"] == orphan.number
        assert retry.system_attrs["fixed_params"] == {"family": "lstm"}
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
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert 8 <= len(complete) <= 8 + 3  # at most workers - 1 over the budget
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    finally:
        _cleanup(config.study.name, pg_url)


def test_a_killed_worker_loses_nothing_and_its_trial_is_retried(
    tmp_path: Path, pg_url: str
) -> None:
    study_file = write_study(
        tmp_path, trials=6, storage=pg_url, families='["xlstm"]', window="[16, 48]"
    )
    config = load_study_config(study_file)
    env = os.environ | {"COLUMNS": "200", "XTUNE_HEARTBEAT_S": "1", "XTUNE_GRACE_S": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "xtune", "search", str(study_file), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    storage = open_storage(pg_url)
    try:
        victim = None
        deadline = time.time() + 240
        while victim is None and time.time() < deadline:
            time.sleep(0.5)
            try:
                trials = optuna.load_study(
                    study_name=config.study.name, storage=storage
                ).get_trials()
            except KeyError:
                continue
            running = [
                t for t in trials
                if t.state == TrialState.RUNNING and t.params and "worker/pid" in t.user_attrs
            ]  # fmt: skip
            if running and any(t.state == TrialState.COMPLETE for t in trials):
                victim = int(running[0].user_attrs["worker/pid"])  # the process running that trial
        assert victim is not None, "no trial ran"
        os.kill(victim, signal.SIGKILL)  # mid-trial, no chance to clean up
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        trials = optuna.load_study(study_name=config.study.name, storage=storage).get_trials()
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        failed = [t for t in trials if t.state == TrialState.FAIL]
        assert failed, (victim, out[-2000:], [(t.number, t.state.name) for t in trials])
        for t in failed:  # retried with the same parameters, and the retry ran
            assert _retried(t, trials) or not t.params
        assert not [t for t in trials if t.state == TrialState.WAITING]
        assert (
            len([t for t in trials if t.state == TrialState.COMPLETE]) >= 5
        )  # the other worker went on
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
    study_file = write_study(
        tmp_path, trials=8, storage=pg_url, families='["xlstm"]', window="[16, 48]"
    )
    config = load_study_config(study_file)
    env = os.environ | {"COLUMNS": "200", "XTUNE_HEARTBEAT_S": "1", "XTUNE_GRACE_S": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "xtune", "search", str(study_file), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        deadline = time.time() + 240
        before: list[int] = []
        while time.time() < deadline:
            time.sleep(0.5)
            try:
                trials = optuna.load_study(
                    study_name=config.study.name, storage=open_storage(pg_url)
                ).get_trials()
            except KeyError:
                continue
            before = [t.number for t in trials if t.state == TrialState.COMPLETE]
            if len(before) >= 2 and any(t.state == TrialState.RUNNING for t in trials):
                break
        _restart_postgres()  # mid-trial, while both workers hold connections
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        trials = optuna.load_study(
            study_name=config.study.name, storage=open_storage(pg_url)
        ).get_trials()
        complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
        assert set(before) <= complete  # nothing finished is lost
        assert len(complete) >= 8
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["pg_isready", "-h", "127.0.0.1", "-t", "30"], check=False)
        _cleanup(config.study.name, pg_url)
