"""Every way a search stops leaves no trial RUNNING without a live owner (journal file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search_tests.studies import write_study
from tests.search_tests.test_search import _study, xtune
from xtune.search import load_study_config, open_storage, read, resolve_storage, sweep
from xtune.search.record import TrialRecord, Worker, write
from xtune.settings import Settings

pytestmark = pytest.mark.slow


def _start(study_file: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xtune", "search", str(study_file), *extra], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip


def _wait_until_training(study_file: Path, owners: int = 1) -> list[optuna.trial.FrozenTrial]:
    """Until ``owners`` trials are RUNNING with their owner recorded (and one has finished)."""
    journal = study_file.with_name(f"{load_study_config(study_file).study.name}.journal")
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.3)
        if not journal.exists():
            continue
        trials = _study(study_file).get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING and read(t).plan is not None]
        if len(running) >= owners and any(t.state == TrialState.COMPLETE for t in trials):
            return running
    raise AssertionError("the search never reached a running trial")


def _slow_study(tmp_path: Path, trials: int = 50) -> Path:
    return write_study(tmp_path, trials=trials, families='["xlstm"]', window="[16, 48]")


def test_sigterm_fails_the_running_trial_and_keeps_finished_ones(tmp_path: Path) -> None:
    study_file = _slow_study(tmp_path)
    proc = _start(study_file)
    _wait_until_training(study_file)
    proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    trials = _study(study_file).get_trials(deepcopy=False)
    assert [t for t in trials if t.state == TrialState.COMPLETE]
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_a_signal_to_the_parent_reaches_every_worker(tmp_path: Path) -> None:
    study_file = _slow_study(tmp_path)
    proc = _start(study_file, "--workers", "2")
    running = _wait_until_training(study_file, owners=2)
    pids = {w.pid for t in running if (w := read(t).worker) is not None}
    assert len(pids) == 2 and proc.pid not in pids
    proc.send_signal(signal.SIGTERM)  # to the parent only, as `kill PID` does
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    for pid in pids:  # no worker is left training as an orphan of init
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    trials = _study(study_file).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_a_killed_search_on_a_journal_file_is_swept_and_retried(tmp_path: Path) -> None:
    study_file = _slow_study(tmp_path, trials=3)
    proc = _start(study_file)
    (victim,) = _wait_until_training(study_file)
    proc.send_signal(signal.SIGKILL)  # out of memory, power loss: no chance to clean up
    proc.communicate(timeout=60)
    assert _study(study_file).trials[victim.number].state == TrialState.RUNNING
    swept = xtune("sweep", str(study_file))
    assert swept.returncode == 0 and f"[{victim.number}]" in swept.stdout, (
        swept.stdout + swept.stderr
    )
    trials = _study(study_file).get_trials(deepcopy=False)
    assert trials[victim.number].state == TrialState.FAIL
    assert read(trials[victim.number]).status == "orphaned"
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]
    assert read(retry).retry_of == victim.number and read(retry).attempt == 1
    assert xtune("search", str(study_file)).returncode == 0  # the retry runs; nothing is left
    trials = _study(study_file).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert trials[retry.number].state == TrialState.COMPLETE


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(("attempt", "requeued"), [(0, True), (1, True), (2, False)])
def test_retries_of_one_configuration_are_capped(
    tmp_path: Path, attempt: int, requeued: bool
) -> None:
    config = load_study_config(write_study(tmp_path))
    storage = open_storage(resolve_storage(config, None, Settings()))
    study = optuna.create_study(study_name="capped", storage=storage, directions=["maximize"])
    trial = study.ask()
    trial.suggest_categorical("family", ["lstm"])
    owner = replace(Worker.here(seed=1), pid=_dead_pid())  # this machine, a process now gone
    write(trial, TrialRecord(status="running", worker=owner, attempt=attempt))
    assert sweep(study, storage, grace_s=3600) == [trial.number]
    failed = study.trials[trial.number]
    assert failed.state == TrialState.FAIL
    waiting = study.get_trials(states=(TrialState.WAITING,))
    if requeued:
        assert [read(t).attempt for t in waiting] == [attempt + 1]
    else:
        assert waiting == [] and "not retried again" in (read(failed).reason or "")


def test_a_live_owner_is_never_swept(tmp_path: Path) -> None:
    config = load_study_config(write_study(tmp_path))
    storage = open_storage(resolve_storage(config, None, Settings()))
    study = optuna.create_study(study_name="alive", storage=storage, directions=["maximize"])
    trial = study.ask()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write(trial, TrialRecord(status="running", worker=Worker.of(sleeper.pid, seed=1)))
        assert sweep(study, storage, grace_s=0) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sweep(study, storage, grace_s=0) == [trial.number]


def test_a_reused_pid_is_not_mistaken_for_the_owner(tmp_path: Path) -> None:
    """A restarted container hands out the same pids: the owner is gone if its pid now names a
    process that started at another time."""
    config = load_study_config(write_study(tmp_path))
    storage = open_storage(resolve_storage(config, None, Settings()))
    study = optuna.create_study(study_name="reused", storage=storage, directions=["maximize"])
    trial = study.ask()
    me = Worker.here(seed=1)
    write(trial, TrialRecord(status="running", worker=replace(me, started=me.started - 1)))
    assert sweep(study, storage, grace_s=3600) == [trial.number]


def test_an_owner_in_another_process_space_is_left_alone(tmp_path: Path) -> None:
    """Same host name, another container: nothing here can tell whether it lives."""
    config = load_study_config(write_study(tmp_path))
    storage = open_storage(resolve_storage(config, None, Settings()))
    study = optuna.create_study(study_name="elsewhere", storage=storage, directions=["maximize"])
    trial = study.ask()
    other = replace(Worker.here(seed=1), pid=_dead_pid(), ns="pid:[1]")
    write(trial, TrialRecord(status="running", worker=other))
    assert sweep(study, storage, grace_s=0) == []


def test_a_worker_resuming_after_an_outage_fails_the_trial_it_cut_off(tmp_path: Path) -> None:
    """An outage inside a trial leaves it RUNNING (Optuna could not store its FAIL either) and
    perhaps without its owner recorded; the worker fails and requeues it when it resumes."""
    from xtune.search._sweep import CUT_OFF
    from xtune.search.worker import CutOff

    config = load_study_config(write_study(tmp_path))
    storage = open_storage(resolve_storage(config, None, Settings()))
    study = optuna.create_study(study_name="cut-off", storage=storage, directions=["maximize"])
    cut, finished = CutOff(), study.ask()
    cut.wrap(lambda t: (0.5,))(finished)
    study.tell(finished, [0.5])
    cut.callback(study, study.trials[finished.number])  # stored: nothing left to settle
    cut.settle(study, storage)
    assert study.trials[finished.number].state == TrialState.COMPLETE
    trial = study.ask()
    trial.suggest_categorical("family", ["lstm"])

    def outage(t: optuna.Trial) -> tuple[float]:
        raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        cut.wrap(outage)(trial)
    assert sweep(study, storage, grace_s=3600) == []  # no owner recorded, too young to judge
    cut.settle(study, storage)
    failed = study.trials[trial.number]
    assert failed.state == TrialState.FAIL and read(failed).reason == CUT_OFF
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert read(retry).retry_of == trial.number
    assert retry.system_attrs["fixed_params"] == {"family": "lstm"}
