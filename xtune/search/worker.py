"""One worker's loop: trials until the study's budget, riding out database outages, stopping
cleanly on Ctrl-C without stranding a trial in RUNNING."""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import sqlalchemy
from optuna.trial import FrozenTrial

from xtune.errors import CapError, StorageError, TrialFault
from xtune.features import Bars
from xtune.search._sweep import fail_cut_off, queued_retries, sweep
from xtune.search.beat import Heartbeat, needs_beat
from xtune.search.budget import Budget, spent_in
from xtune.search.config import StudyConfig
from xtune.search.device import DeviceRecord, check_device
from xtune.search.objective import Objective
from xtune.search.proxy import RPC_ERROR, connection_limit
from xtune.search.record import PluginRecord
from xtune.search.storage import is_database, open_storage
from xtune.search.study import make_sampler
from xtune.search.trial_note import NoteTrials
from xtune.settings import Settings

Callback = Callable[[optuna.Study, FrozenTrial], None]
# A trial refused for its caps, or one that ran out of memory or hit a bug, is FAIL with its
# reason recorded; the worker goes on with the next trial.
FAULTS = (CapError, TrialFault)


@dataclass(frozen=True)
class Inputs:
    """The bars and every candidate feature, built once by the parent for all workers."""

    bars: Bars
    candidates: pd.DataFrame
    plugins: tuple[PluginRecord, ...] = ()  # the plugin files and the files they read, hashed


@dataclass(frozen=True)
class WorkerArgs:
    config: StudyConfig
    settings: Settings
    storage: str
    target: int
    device: str
    worker: int
    seed: int  # this worker's sampler seed, recorded on each of its trials
    artifacts: str
    deadline: float | None = None  # time.time() after which no new trial starts
    visible: str | None = None  # CUDA_VISIBLE_DEVICES for this worker's process (--workers auto)


class GracefulInterrupt:
    """Ctrl-C or SIGTERM (``docker stop``) that never strands a trial in RUNNING.

    Optuna marks a trial FAIL only if the interrupt arrives inside the objective. A signal that
    lands while it creates or stores a trial would leave that trial RUNNING forever. So the
    signal only sets a flag outside the objective: the next objective call fails its (fresh)
    trial at once, and the after-trial callback stops the study. Inside the objective the
    first signal interrupts training; a second one (the parent forwarding it) changes nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self.inside = False

    def handler(self, signum: int, frame: object) -> None:
        first = not self.requested
        self.requested = True
        if self.inside and first:
            raise KeyboardInterrupt

    def wrap(
        self, objective: Callable[[optuna.Trial], tuple[float, ...]]
    ) -> Callable[[optuna.Trial], tuple[float, ...]]:
        def run(trial: optuna.Trial) -> tuple[float, ...]:
            if self.requested:
                raise KeyboardInterrupt  # Optuna marks this trial FAIL
            self.inside = True
            try:
                return objective(trial)
            finally:
                self.inside = False

        return run

    def callback(self, study: optuna.Study, _: FrozenTrial) -> None:
        if self.requested:
            study.stop()


class CutOff:
    """The trial this worker runs, from the objective's start until Optuna stored its end (the
    after-trial callback). A database outage in between leaves it RUNNING, since Optuna could
    not store its FAIL either; the worker fails and requeues it when the database is back."""

    def __init__(self) -> None:
        self.trial_id: int | None = None

    def wrap(
        self, objective: Callable[[optuna.Trial], tuple[float, ...]]
    ) -> Callable[[optuna.Trial], tuple[float, ...]]:
        def run(trial: optuna.Trial) -> tuple[float, ...]:
            self.trial_id = trial._trial_id
            return objective(trial)

        return run

    def callback(self, *_: object) -> None:
        self.trial_id = None

    def settle(self, study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
        if self.trial_id is not None:
            fail_cut_off(study, storage, self.trial_id)
            self.trial_id = None


# What a database restart or a dropped connection raises somewhere inside Optuna or SQLAlchemy.
TRANSIENT = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DBAPIError,
    optuna.exceptions.StorageInternalError,
    optuna.exceptions.UpdateFinishedTrialError,  # our trial was swept while the database was away
    StorageError,
    RPC_ERROR,  # through the storage proxy: it or its database is away
)
MAX_OUTAGE_S = 600


def _is_transient(exc: BaseException) -> bool:
    """A database or storage proxy outage, directly or anywhere in the exception chain. Optuna 5
    raises an UnboundLocalError of its own while failing a trial whose result could not be stored."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_worker(
    args: WorkerArgs, inputs: Inputs, interrupt: GracefulInterrupt, callback: Callback | None = None
) -> None:
    """Run trials until the study holds ``args.target`` finished ones, riding out database
    restarts (backoff up to MAX_OUTAGE_S, then a fresh connection pool and study).

    The trial the outage cut off is failed and retried with the same parameters once the
    database is back; every trial finished before the outage is already stored."""
    device = check_device(args.device, bf16=True)  # once, before any trial; may fall back to fp32
    delay, waited, cut = 1.0, 0.0, CutOff()
    while True:
        try:
            _run_worker_once(args, inputs, device, (interrupt, cut), callback)
            return
        except Exception as exc:
            if (limit := connection_limit(args.storage, exc)) is not None:
                raise limit from None  # more workers than the database takes: one line
            if not _is_transient(exc) or waited >= MAX_OUTAGE_S or not is_database(args.storage):
                raise
            logging.getLogger("xtune").warning(
                "worker %d: storage unavailable (%s); retrying in %.0f s",
                args.worker,
                type(exc).__name__,
                delay,
            )
            time.sleep(delay)
            waited += delay
            delay = min(30.0, delay * 2)


class FreezeSurvivors:
    """After each trial, move every object still alive out of the collector's reach. Optuna's
    ``gc_after_trial`` (which frees a trial's reference cycles, CUDA tensors among them)
    otherwise walks every object of the process after each trial: torch, pandas, the bars,
    the study cache, which can take longer than a trial stopped at its first rung trained
    (bench/overhead.py measures it). Frozen objects are still freed when their last
    reference goes; a cycle among them that died meanwhile is collected by the full pass
    every ``FULL_EVERY`` trials."""

    FULL_EVERY = 50

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *_: object) -> None:
        self.calls += 1
        if self.calls % self.FULL_EVERY == 0:
            gc.unfreeze()
        gc.collect()
        gc.freeze()


def _objective(
    args: WorkerArgs,
    inputs: Inputs,
    device: DeviceRecord,
    storage: optuna.storages.BaseStorage,
    guards: tuple[GracefulInterrupt, CutOff],
) -> Callable[[optuna.Trial], tuple[float, ...]]:
    """What each trial of this worker runs: the :class:`Objective` (learning curves stored as
    artifacts), inside the interrupt and cut-off guards and, behind the storage proxy, a
    heartbeat of xtune's own (Optuna's needs a database)."""
    from optuna.artifacts import FileSystemArtifactStore

    interrupt, cut = guards
    Path(args.artifacts).mkdir(parents=True, exist_ok=True)
    objective = Objective(
        args.config,
        inputs.bars,
        inputs.candidates,
        device=device,
        seed=args.seed,
        artifact_store=FileSystemArtifactStore(args.artifacts),
        plugins=inputs.plugins,
    )
    guarded = cut.wrap(interrupt.wrap(objective))
    if needs_beat(storage):
        return Heartbeat(storage, args.settings.heartbeat_s).wrap(guarded)
    return guarded


def _at_start(
    study: optuna.Study, storage: optuna.storages.BaseStorage, grace_s: float
) -> tuple[float, bool]:
    """Sweep the trials of workers that died before this one started; return the budget spent
    and whether retries are queued. One read of the trials serves all three (through the
    storage proxy, every worker that starts reads them)."""
    trials = study.get_trials(deepcopy=False)
    if sweep(study, storage, grace_s=grace_s, trials=trials):
        trials = study.get_trials(deepcopy=False)  # with the retries the sweep queued
    return spent_in(trials), bool(queued_retries(study, trials))


def _run_worker_once(
    args: WorkerArgs,
    inputs: Inputs,
    device: DeviceRecord,
    guards: tuple[GracefulInterrupt, CutOff],
    callback: Callback | None,
) -> None:
    (interrupt, cut), config, grace = guards, args.config, args.settings.grace_s
    storage = open_storage(args.storage, args.settings)
    study = optuna.load_study(
        study_name=config.study.name, storage=storage, sampler=make_sampler(config, args.seed)
    )
    cut.settle(study, storage)  # this worker's trial, if the database outage cut it off
    spent, queued = _at_start(study, storage, grace)
    remaining = args.target - spent
    if remaining <= 1e-9 and not queued:
        return
    objective = _objective(args, inputs, device, storage, guards)

    # Sweep between trials too: a worker killed before its first heartbeat is invisible to
    # Optuna's own stale check, and its retry should run while live workers are still here.
    def sweep_between_trials(s: optuna.Study, _: FrozenTrial) -> None:
        sweep(s, storage, grace_s=grace)

    budget = Budget(args.target, max(1, math.ceil(remaining)))  # this run's budget (--n-trials)

    def budget_and_sweep(s: optuna.Study, trial: FrozenTrial) -> None:
        # one read of the trials for both: through the storage proxy a read is the costly call
        trials = s.get_trials(deepcopy=False)
        budget(s, trial, trials)
        sweep(s, storage, grace_s=grace, trials=trials)

    freeze, notes = FreezeSurvivors(), NoteTrials(config.study.objectives)
    callbacks: list[Callback] = [cut.callback, notes, interrupt.callback, budget_and_sweep, freeze]
    if callback is not None:
        callbacks.append(callback)
    timeout = None if args.deadline is None else max(0.0, args.deadline - time.time())
    if interrupt.requested:  # stopped while starting: no trial is begun only to be failed
        raise KeyboardInterrupt
    freeze()
    # catch: a trial refused for its caps is FAIL with a reason; the worker goes on
    study.optimize(
        objective,
        n_trials=None if remaining > 1e-9 else 0,
        timeout=timeout,
        callbacks=callbacks,
        gc_after_trial=True,
        catch=FAULTS,
    )
    if not interrupt.requested:
        _run_retries(
            study, objective, [cut.callback, notes, interrupt.callback, sweep_between_trials]
        )
    if interrupt.requested:
        raise KeyboardInterrupt
    budget.check()


def _run_retries(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], tuple[float, ...]],
    callbacks: list[Callback],
) -> None:
    """Run the queued retries of dead workers' trials, even if live workers filled the budget
    meanwhile: a finished study leaves no queued retry behind."""
    retries = queued_retries(study)
    if retries:
        study.optimize(
            objective,
            n_trials=len(retries),
            gc_after_trial=True,
            catch=FAULTS,
            callbacks=callbacks,
        )
