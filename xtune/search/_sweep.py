"""Leave no trial RUNNING without a live owner (``xtune sweep``, and on every worker start).

Database storages: Optuna's heartbeat (through the storage proxy, xtune's own:
:mod:`xtune.search.beat`) marks a trial FAIL only when (a) its worker sent at least
one heartbeat and (b) a live worker starts a new trial later. A worker killed before its first
heartbeat, or the last worker of a study, leaves RUNNING trials forever. The sweep closes both
holes: a RUNNING trial whose heartbeat is stale, or that never sent one and started more than
the grace period ago, is orphaned.

On either storage, a RUNNING trial is orphaned when its recorded owner ran on this machine and
that process is gone; journal files have no heartbeat, so there that (or no owner recorded and
older than the grace period) is the only test, and owners on other machines are left alone. A
worker that resumes after a database outage fails the trial the outage cut off itself
(:func:`fail_cut_off`): Optuna could not store its FAIL, its owner may not even be recorded,
and waiting for its heartbeat to go stale could outlast the study's last worker.

An orphan is marked FAIL and its parameters are queued again, at most ``MAX_RETRIES`` times
per configuration: a trial that kills its worker every time (out of memory) is then left FAIL
with the reason, so a restart policy does not become a crash loop.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from xtune.search.beat import beat_age, needs_beat
from xtune.search.record import TrialRecord, mark, process_identity, read

MAX_RETRIES = 2
ORPHANED = "worker died (no live owner); marked FAIL and requeued by sweep"
CUT_OFF = "cut off by a database outage; marked FAIL and requeued by its worker"


def _database_orphans(
    study: optuna.Study, storage: RDBStorage, running: list[FrozenTrial], grace_s: float
) -> list[FrozenTrial]:
    study_id = storage.get_study_id_from_name(study.study_name)
    stale = set(storage._get_stale_trial_ids(study_id)) if storage.heartbeat_interval else set()
    with storage.engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        beating = {row[0] for row in rows}
    return [
        t
        for t in running
        if t._trial_id in stale or (t._trial_id not in beating and _old(t, grace_s))
    ]


def _old(trial: FrozenTrial, grace_s: float) -> bool:
    start = trial.datetime_start
    return start is not None and datetime.now() - start > timedelta(seconds=grace_s)


def _silent(running: list[FrozenTrial], grace_s: float) -> list[FrozenTrial]:
    """Through the storage proxy: trials whose xtune heartbeat is older than ``grace_s``, or
    that never sent one and started longer ago (:mod:`xtune.search.beat`)."""
    ages = [(t, beat_age(t)) for t in running]
    return [t for t, age in ages if (_old(t, grace_s) if age is None else age > grace_s)]


def _local_orphans(running: list[FrozenTrial], grace_s: float | None) -> list[FrozenTrial]:
    """Trials whose owner ran in this machine's process space and is gone (its pid is dead or
    now names another process). Owners elsewhere are left alone: nothing here can tell. With
    ``grace_s``, a trial with no owner recorded is orphaned once older than that (killed
    before it wrote its owner; journals only: a database has the heartbeat for that)."""
    here, my_ns = socket.gethostname(), process_identity(os.getpid())[1]
    orphans = []
    for trial in running:
        owner = read(trial).worker
        if owner is None:
            gone = grace_s is not None and _old(trial, grace_s)
        else:
            local = owner.host == here and owner.ns == my_ns != ""
            gone = local and process_identity(owner.pid) != (owner.started, owner.ns)
        if gone:
            orphans.append(trial)
    return orphans


def _fail_and_requeue(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    trial: FrozenTrial,
    why: str = ORPHANED,
) -> bool:
    attempt = read(trial).attempt or 0
    reason = why
    if attempt >= MAX_RETRIES:
        reason = (
            f"its worker died on each of {attempt + 1} tries of this configuration (out of memory?); "
            "not retried again"
        )
    try:  # its own key, first: a finished trial cannot be updated, and if the owner finishes
        # meanwhile its own status ("ok") still wins when the record is read
        mark(storage, trial._trial_id, TrialRecord(swept=reason))
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # its owner finished it meanwhile: not an orphan after all
    requeue(study, trial)
    return True


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters again, up to MAX_RETRIES times per configuration.
    The sweep calls it, and Optuna does for a stale heartbeat (in place of its own
    RetryFailedTrialCallback, which keeps no count), so one cap holds for both."""
    attempt = read(trial).attempt or 0
    if attempt < MAX_RETRIES and trial.params:
        retry = TrialRecord(retry_of=trial.number, attempt=attempt + 1, label=read(trial).label)
        study.enqueue_trial(trial.params, user_attrs=retry.to_attrs())


def fail_cut_off(study: optuna.Study, storage: optuna.storages.BaseStorage, trial_id: int) -> bool:
    """Fail and requeue the trial a storage outage cut off in this worker: still RUNNING (Optuna
    could not store its end), or FAIL because the outage raised inside the objective and Optuna
    stored that once the storage was back. Returns whether it requeued: a trial a sweep or
    Optuna's stale-heartbeat check requeued already is not queued twice."""
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.FAIL:
        retried = any(read(t).retry_of == trial.number for t in study.get_trials(deepcopy=False))
        if read(trial).swept is None and not retried:
            requeue(study, trial)
            return True
        return False
    return trial.state == TrialState.RUNNING and _fail_and_requeue(study, storage, trial, CUT_OFF)


def sweep(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    *,
    grace_s: float,
    trials: Sequence[FrozenTrial] | None = None,
) -> list[int]:
    """Fail (and requeue, up to MAX_RETRIES) orphaned RUNNING trials; returns their numbers.
    ``trials``: the study's trials as just read by the caller (else they are read here).

    Trial start times are the workers' local clocks, so machines sharing a database study
    should share a time zone (the docker image runs in UTC).
    """
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return []
    if isinstance(storage, RDBStorage) or needs_beat(storage):
        beyond = (
            _database_orphans(study, storage, running, grace_s)
            if isinstance(storage, RDBStorage)
            else _silent(running, grace_s)
        )
        local = _local_orphans(running, None)
        seen = {t.number for t in beyond}
        orphans = beyond + [t for t in local if t.number not in seen]
    else:
        orphans = _local_orphans(running, grace_s)
    return [t.number for t in orphans if _fail_and_requeue(study, storage, t)]


def queued_retries(
    study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
) -> list[FrozenTrial]:
    """Retries the sweep queued that no worker has started yet. ``trials``: the study's trials
    as just read by the caller (else they are read here)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    return [t for t in waiting if read(t).retry_of is not None]
