"""Faults through the storage proxy, each with `xtune search --workers 2` on a real proxy
process and the real server at TEST_DB_URL: a worker killed mid-trial, the proxy restarted
mid-trial, PostgreSQL restarted behind the proxy. As on direct PostgreSQL: no finished trial
lost, none left RUNNING, the cut trial retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from tests.search_tests.polling import owned_running, states, trials_of, wait_for
from tests.search_tests.proxy import Proxy, cluster_of, restart_cluster
from tests.search_tests.studies import write_study
from xtune.search import StudyConfig, load_study_config, open_storage, read
from xtune.search.beat import KEY

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def proxy(tmp_path: Path, pg_url: str) -> Iterator[Proxy]:
    running = Proxy(pg_url, tmp_path / "proxy.log").start()
    yield running
    running.stop()


def _search(tmp_path: Path, url: str, trials: int) -> tuple[StudyConfig, subprocess.Popen[str]]:
    """`xtune search --workers 2` on slow-ish xLSTM trials, a 1 s heartbeat and 4 s grace."""
    study_file = write_study(
        tmp_path, trials=trials, storage=url, families='["xlstm"]', window="[16, 48]"
    )
    env = os.environ | {"COLUMNS": "200", "XTUNE_HEARTBEAT_S": "1", "XTUNE_GRACE_S": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "xtune", "search", str(study_file), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    return load_study_config(study_file), proc


def _mid_trial(trials: list[FrozenTrial]) -> bool:
    return bool(owned_running(trials)) and len(states(trials, TrialState.COMPLETE)) >= 1


def _retried(trial: FrozenTrial, trials: list[FrozenTrial]) -> bool:
    return any(read(t).retry_of == trial.number for t in trials)


def _check_after(trials: list[FrozenTrial], before: set[int], cut: set[int], target: int) -> None:
    """Nothing finished lost, nothing left RUNNING or queued, every failed trial that drew
    parameters retried with them, and each trial running at the fault finished or was retried."""
    complete = {t.number for t in states(trials, TrialState.COMPLETE)}
    assert before <= complete and len(complete) >= target
    assert not states(trials, TrialState.RUNNING, TrialState.WAITING)
    failed = states(trials, TrialState.FAIL)  # one cut before its first draw has nothing to retry
    assert all(_retried(t, trials) or not t.params for t in failed), [
        (t.number, t.params, read(t)) for t in failed
    ]
    assert all(n in complete or _retried(trials[n], trials) for n in cut)


def test_a_worker_killed_through_the_proxy_loses_nothing(
    tmp_path: Path, pg_url: str, proxy: Proxy
) -> None:
    config, proc = _search(tmp_path, proxy.url, trials=4)
    try:
        trials = wait_for(config, proxy.url, _mid_trial, seconds=600)
        victim = owned_running(trials)[0]
        assert KEY in victim.system_attrs  # its worker stamps xtune's heartbeat through the proxy
        owner = read(victim).worker
        assert owner is not None
        os.kill(owner.pid, signal.SIGKILL)  # mid-trial, no chance to clean up
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        trials = trials_of(config, pg_url)
        assert trials[victim.number].state == TrialState.FAIL
        _check_after(trials, set(), {victim.number}, 4)
    finally:
        if proc.poll() is None:
            proc.kill()
        optuna.delete_study(study_name=config.study.name, storage=open_storage(pg_url))


def test_workers_ride_out_a_proxy_restart(tmp_path: Path, pg_url: str, proxy: Proxy) -> None:
    config, proc = _search(tmp_path, proxy.url, trials=5)
    try:
        trials = wait_for(config, proxy.url, _mid_trial, seconds=600)
        proxy.kill()  # mid-trial, calls under way or not
        time.sleep(2)
        proxy.start()  # the same address
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        assert "exited with code" not in err, err[-3000:]
        before = {t.number for t in states(trials, TrialState.COMPLETE)}
        cut = {t.number for t in owned_running(trials)}
        _check_after(trials_of(config, pg_url), before, cut, 5)
    finally:
        if proc.poll() is None:
            proc.kill()
        optuna.delete_study(study_name=config.study.name, storage=open_storage(pg_url))


def test_workers_ride_out_a_postgresql_restart_behind_the_proxy(
    tmp_path: Path, pg_url: str, proxy: Proxy
) -> None:
    cluster = cluster_of(pg_url)
    if cluster is None:
        pytest.skip("needs the local cluster behind TEST_DB_URL, which this test restarts (root)")
    config, proc = _search(tmp_path, proxy.url, trials=5)
    try:
        trials = wait_for(config, proxy.url, _mid_trial, seconds=600)
        # mid-trial, while the proxy holds its pool; down for 3 heartbeats, so calls meet it
        restart_cluster(cluster, outage_s=3.0)
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        assert "exited with code" not in err, err[-3000:]
        before = {t.number for t in states(trials, TrialState.COMPLETE)}
        cut = {t.number for t in owned_running(trials)}
        _check_after(trials_of(config, pg_url), before, cut, 5)
        log = proxy.stop()
        assert "database unavailable" in log and "Traceback" not in log, log[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        port = str(make_url(pg_url).port or 5432)
        subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", port, "-t", "30"], check=False)
        optuna.delete_study(study_name=config.study.name, storage=open_storage(pg_url))
