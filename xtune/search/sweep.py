"""Leave no trial RUNNING without a live owner (``xtune sweep``, and on every worker start).

Optuna's heartbeat marks a trial FAIL only when (a) its worker sent at least one heartbeat and
(b) a live worker starts a new trial later. A worker killed before its first heartbeat, or the
last worker of a study, leaves RUNNING trials forever. The sweep closes both holes: a RUNNING
trial whose heartbeat is stale, or that never sent one and started more than the grace period
ago, is marked FAIL and its parameters are queued again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from xtune.search.record import TrialRecord, mark, read

ORPHANED = TrialRecord(
    status="orphaned", reason="worker died (no live heartbeat); marked FAIL and requeued by sweep"
)


def sweep(
    study: optuna.Study, storage: optuna.storages.BaseStorage, *, grace_s: float
) -> list[int]:
    """Fail and requeue orphaned RUNNING trials; returns their numbers.

    Only database storages have heartbeats; on a journal file nothing is swept (a RUNNING
    trial there may be a live, long one). Trial start times are the workers' local clocks, so
    machines sharing a study should share a time zone (the docker image runs in UTC).
    """
    if not isinstance(storage, RDBStorage):
        return []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    study_id = storage.get_study_id_from_name(study.study_name)
    stale = set(storage._get_stale_trial_ids(study_id)) if storage.heartbeat_interval else set()
    with storage.engine.connect() as connection:
        beating = {
            row[0]
            for row in connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        }
    now = datetime.now()
    swept = []
    for trial in running:
        never_beat = trial._trial_id not in beating
        old = trial.datetime_start is not None and now - trial.datetime_start > timedelta(
            seconds=grace_s
        )
        if trial._trial_id in stale or (never_beat and old):
            try:  # attributes first: a finished trial cannot be updated
                mark(storage, trial._trial_id, ORPHANED)
                if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # its owner finished it meanwhile: not an orphan after all
            if trial.params:
                study.enqueue_trial(
                    trial.params, user_attrs=TrialRecord(retry_of=trial.number).to_attrs()
                )
            swept.append(trial.number)
    return swept


def queued_retries(study: optuna.Study) -> list[FrozenTrial]:
    """Retries the sweep queued that no worker has started yet."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return [t for t in waiting if read(t).retry_of is not None]
