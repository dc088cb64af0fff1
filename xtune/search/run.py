"""Create a study once, then run trials in one or several worker processes.

The parent creates the schema and the study before any worker starts (many processes creating
tables at once on a fresh database fail), then workers ``load_study`` and optimize until the
study holds ``target`` finished trials. A worker's sampler is built from the study file with
seed ``seed + worker``, so workers do not repeat each other's random start-up trials.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import sqlalchemy
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from xtune.errors import SpecError
from xtune.features import Bars, DataSpec, build_features, load_bars
from xtune.search.config import StudyConfig, StudyError
from xtune.search.objective import CapError, Objective
from xtune.search.ranges import highest
from xtune.search.report import pareto_front
from xtune.search.storage import StorageError, is_database, mask, open_storage
from xtune.search.sweep import heartbeat_settings, sweep

FINISHED = (TrialState.COMPLETE,)


def make_sampler(config: StudyConfig, worker: int = 0) -> optuna.samplers.BaseSampler:
    seed = config.study.seed + worker
    name = config.study.sampler
    if name == "tpe":
        startup = min(10, max(3, config.study.trials // 4))
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, constant_liar=True, seed=seed, n_startup_trials=startup
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(4, min(50, config.study.trials // 4))
        )
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def study_note(config: StudyConfig) -> str:
    c = config.caps
    objectives = ", ".join(
        f"{o} ({d})" for o, d in zip(config.study.objectives, config.directions, strict=True)
    )
    return (
        f"# xtune study `{config.study.name}`\n\n"
        f"Objectives: {objectives}, all on the validation part (chronological, purged); the test "
        "part is never touched by the search.\n\n"
        f"Caps for the trading PC: hidden/embed <= {c.max_hidden}, layers/blocks <= {c.max_layers} "
        f"(hard bounds of the space), parameters <= {c.max_params:,}, latency <= "
        f"{c.max_latency_ms} ms per window (batch 1, one CPU thread, measured on the search machine).\n\n"
        "**Infeasible trials** are stored COMPLETE with worst-case values and the user attribute "
        "`feasible = false`. This dashboard does not read constraints when it marks best trials: "
        "run `xtune status STUDY.toml` for the true feasible Pareto front.\n\n"
        "Each trial's accuracy sits beside `metrics/baseline_accuracy` (always guessing the "
        "majority class); a trial is only interesting above it. Learning curves are artifacts."
    )


def artifacts_dir(storage: str, override: str | None = None) -> Path:
    if override or os.environ.get("XTUNE_ARTIFACTS"):
        return Path(override or os.environ["XTUNE_ARTIFACTS"])
    if not is_database(storage):
        return Path(storage).with_suffix(".artifacts")
    return Path("xtune-artifacts")


def create_study(config: StudyConfig, storage_url: str) -> optuna.Study:
    """Create the study if needed (schema first), or check that the existing one matches."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    study = optuna.create_study(
        study_name=config.study.name,
        storage=storage,
        directions=config.directions,  # type: ignore[arg-type]
        sampler=make_sampler(config),
        load_if_exists=True,
    )
    wanted = [optuna.study.StudyDirection.MAXIMIZE if d == "maximize" else optuna.study.StudyDirection.MINIMIZE
              for d in config.directions]  # fmt: skip
    if study.directions != wanted:
        raise StudyError(
            f"{config.path}: study '{config.study.name}' already exists in {mask(storage_url)} with "
            "other objectives. Give the study a new name, or restore the old objectives."
        )
    if "xtune/objectives" not in study.user_attrs:
        study.set_metric_names(list(config.study.objectives))
        study.set_user_attr("xtune/objectives", list(config.study.objectives))
        study.set_user_attr("xtune/caps", vars(config.caps))
        study.set_user_attr("xtune/budget", config.study.trials)
        from optuna_dashboard import save_note

        save_note(study, study_note(config))
    return study


def prepare_inputs(
    config: StudyConfig, data: str | None = None, progress: bool = False
) -> tuple[Bars, pd.DataFrame]:
    """Load and check the bars, then build every candidate feature once (cached by data hash)."""
    bars = load_bars(data or config.data.source)
    worst = DataSpec(
        features=config.features.candidates,
        window=int(highest(config.data.window)),
        labels=config.labels,
        split=config.split,
    )
    if len(bars) < worst.min_bars:
        raise SpecError(
            f"{bars.source}: {len(bars)} bars, but this study's largest window "
            f"({worst.window}) with all candidate features needs {worst.min_bars}. Use more bars, "
            "a smaller [data] window range, or fewer long-window features."
        )
    return bars, build_features(bars, config.features.candidates, progress=progress)


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


@dataclass(frozen=True)
class WorkerArgs:
    config: StudyConfig
    storage: str
    target: int
    device: str
    data: str | None
    worker: int
    artifacts: str
    deadline: float | None = None  # time.time() after which no new trial starts


class _GracefulInterrupt:
    """Ctrl-C that never strands a trial in RUNNING.

    Optuna marks a trial FAIL only if the interrupt arrives inside the objective. A SIGINT that
    lands while it creates or stores a trial would leave that trial RUNNING forever. So the
    signal only sets a flag outside the objective: the next objective call fails its (fresh)
    trial at once, and the after-trial callback stops the study.
    """

    def __init__(self) -> None:
        self.requested = False
        self.inside = False

    def handler(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.inside:
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


# What a database restart or a dropped connection raises somewhere inside Optuna or SQLAlchemy.
_TRANSIENT = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DBAPIError,
    optuna.exceptions.StorageInternalError,
    optuna.exceptions.UpdateFinishedTrialError,  # our trial was swept while the database was away
    StorageError,
)
MAX_OUTAGE_S = 600


def _is_transient(exc: BaseException) -> bool:
    """A database outage, directly or anywhere in the exception chain. Optuna 5 raises an
    UnboundLocalError of its own while failing a trial whose result could not be stored."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _TRANSIENT):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_worker(
    args: WorkerArgs, callback: Callable[[optuna.Study, FrozenTrial], None] | None = None
) -> None:
    """One worker: run trials until the study holds ``args.target`` finished ones, riding out
    database restarts (backoff up to MAX_OUTAGE_S, then a fresh connection pool and study).

    A trial cut off by the outage is swept after its grace period and retried with the same
    parameters; every trial finished before the outage is already stored."""
    bars, candidates = prepare_inputs(args.config, args.data)
    delay, waited = 1.0, 0.0
    while True:
        try:
            _run_worker_once(args, bars, candidates, callback)
            return
        except Exception as exc:
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


def _run_worker_once(
    args: WorkerArgs,
    bars: Bars,
    candidates: pd.DataFrame,
    callback: Callable[[optuna.Study, FrozenTrial], None] | None,
) -> None:
    config = args.config
    storage = open_storage(args.storage)
    study = optuna.load_study(
        study_name=config.study.name, storage=storage, sampler=make_sampler(config, args.worker)
    )
    sweep(study, storage)  # trials of workers that died before this one started
    remaining = args.target - count_finished(study)
    if remaining <= 0 and not _queued_retries(study):
        return
    from optuna.artifacts import FileSystemArtifactStore

    Path(args.artifacts).mkdir(parents=True, exist_ok=True)
    objective = Objective(
        config,
        bars,
        candidates,
        device=args.device,
        artifact_store=FileSystemArtifactStore(args.artifacts),
    )
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
        MaxTrialsCallback(args.target, states=FINISHED)
    ]
    if callback is not None:
        callbacks.append(callback)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:  # records propagate from child loggers
        handler.addFilter(_quiet_interrupts)
    timeout = None if args.deadline is None else max(0.0, args.deadline - time.time())
    interrupt = _GracefulInterrupt()
    callbacks.append(interrupt.callback)

    # Sweep between trials too: a worker killed before its first heartbeat is invisible to
    # Optuna's own stale check, and its retry should run while live workers are still here.
    def sweep_between_trials(s: optuna.Study, _: FrozenTrial) -> None:
        sweep(s, storage)

    callbacks.append(sweep_between_trials)
    previous = signal.signal(signal.SIGINT, interrupt.handler)
    try:
        # catch: a trial refused for its caps is FAIL with a reason; the worker goes on
        study.optimize(
            interrupt.wrap(objective),
            n_trials=max(remaining, 0),
            timeout=timeout,
            callbacks=callbacks,
            gc_after_trial=True,
            catch=(CapError,),
        )
        # Retries of dead workers' trials run even if live workers filled the budget meanwhile:
        # a finished study leaves no queued retry behind.
        retries = _queued_retries(study)
        if retries and not interrupt.requested:
            study.optimize(
                interrupt.wrap(objective),
                n_trials=len(retries),
                callbacks=[interrupt.callback, sweep_between_trials],
                gc_after_trial=True,
                catch=(CapError,),
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupt.requested:
        raise KeyboardInterrupt


def _queued_retries(study: optuna.Study) -> list[FrozenTrial]:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return [t for t in waiting if "xtune/retry_of" in t.user_attrs]


def _quiet_interrupts(record: logging.LogRecord) -> bool:
    """Drop Optuna's traceback for a trial failed by Ctrl-C (the CLI says it in one line);
    keep every other failure's log."""
    return "KeyboardInterrupt" not in record.getMessage()


def _worker_main(args: WorkerArgs) -> None:
    # On Ctrl-C Optuna has already marked the running trial FAIL; the parent reports.
    with contextlib.suppress(KeyboardInterrupt):
        run_worker(args)


def run_search(
    config: StudyConfig,
    storage_url: str,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    device: str = "cpu",
    data: str | None = None,
    artifacts: str | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> optuna.Study:
    """Run the search; returns the study. ``on_progress(done, target, front_size)`` is called
    as trials finish. Ctrl-C stops cleanly: the running trial(s) turn FAIL, finished ones stay."""
    prepare_inputs(config, data, progress=True)  # fail on bad bars before any worker starts
    study = create_study(config, storage_url)
    done = count_finished(study)
    target = done + n_trials if n_trials is not None else config.study.trials
    art = str(artifacts_dir(storage_url, artifacts))
    deadline = time.time() + timeout if timeout else None

    def report(study: optuna.Study, _: FrozenTrial | None = None) -> None:
        if on_progress is None:
            return
        # while the database restarts the bar skips updates and catches up once it is back
        with contextlib.suppress(*_TRANSIENT):
            on_progress(count_finished(study), target, len(pareto_front(study)))

    def args(k: int) -> WorkerArgs:
        return WorkerArgs(config, storage_url, target, _device(device, k), data, k, art, deadline)

    report(study)
    if workers <= 1:
        run_worker(args(0), callback=report)
        return study
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(args(k),)) for k in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            report(study)
    finally:
        for p in procs:
            p.join()
    for k, p in enumerate(procs):
        if p.exitcode not in (0, None):
            logging.getLogger("xtune").warning("worker %d exited with code %s", k, p.exitcode)
    if any(p.exitcode not in (0, None) for p in procs):
        # A worker died (killed, out of memory): once its heartbeat is stale, fail and requeue
        # its trial, so nothing stays RUNNING; the next search run picks the retry up.
        time.sleep(heartbeat_settings()[1] + 1)
        if sweep(study, open_storage(storage_url)):
            run_worker(args(0), callback=report)  # run the retries here: no worker is left
    report(study)
    return study


def _device(device: str, worker: int) -> str:
    """``cuda`` spreads workers over all GPUs round-robin; ``cuda:K`` pins them all to GPU K."""
    if device == "cuda":
        import torch

        n = torch.cuda.device_count()
        return f"cuda:{worker % n}" if n else "cpu"
    return device
