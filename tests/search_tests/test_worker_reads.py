"""How often a worker reads its study's trials: through the storage proxy each read is a call
that re-reads every RUNNING trial, so the worker loop's own reads are counted per trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

import xtune.search.worker as worker_module
from tests.search_tests.studies import write_study
from xtune.features import load_bars
from xtune.search import create_study, load_study_config
from xtune.search.record import TrialRecord, write
from xtune.search.worker import GracefulInterrupt, Inputs, WorkerArgs
from xtune.settings import Settings


class CountingJournal(JournalStorage):
    """A journal storage that counts reads of a study's trials."""

    reads = 0

    def get_all_trials(self, *args: Any, **kwargs: Any) -> list[optuna.trial.FrozenTrial]:
        CountingJournal.reads += 1
        return super().get_all_trials(*args, **kwargs)


class Trained:
    """An objective that stores a trained trial's status and trains nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        trial.suggest_float("x", 0.0, 1.0)
        write(trial, TrialRecord(status="ok"))
        return (0.5, 0.5)


def test_the_worker_loop_reads_the_trials_once_per_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per trial: Optuna's own read (the queue of waiting trials; a random sampler reads none)
    and one read of xtune's, shared by the budget check and the sweep between trials."""
    config = load_study_config(write_study(tmp_path, sampler="random"))
    bars = load_bars(tmp_path / "bars.csv")
    journal = str(tmp_path / "study.journal")
    create_study(config, journal, Settings(), bars)
    counting = CountingJournal(JournalFileBackend(journal))
    monkeypatch.setattr(worker_module, "open_storage", lambda *_, **__: counting)
    monkeypatch.setattr(worker_module, "Objective", Trained)
    trials = 8
    args = WorkerArgs(config, Settings(), journal, trials, "cpu", 0, 1, str(tmp_path / "art"))
    CountingJournal.reads = 0
    worker_module.run_worker(args, Inputs(bars, pd.DataFrame()), GracefulInterrupt())
    done = optuna.load_study(study_name=config.study.name, storage=counting).get_trials()
    assert len(done) == trials
    start_and_end = 4  # sweep, budget and queued retries at start; queued retries at the end
    assert CountingJournal.reads - 1 <= 2 * trials + start_and_end  # -1: the load above
