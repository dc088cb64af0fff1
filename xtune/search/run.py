"""The search runner: prepare the data once, create the study, then run one worker here or
several worker processes, report progress, and sweep up after workers that died."""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtune.errors import SpecError, XtuneError
from xtune.features import DataSpec, build_features, load_bars
from xtune.features._audit import preflight
from xtune.search._sweep import sweep
from xtune.search.budget import spent
from xtune.search.config import StudyConfig
from xtune.search.device import require_device
from xtune.search.gpus import worker_slots
from xtune.search.journal import check_journal
from xtune.search.ranges import highest
from xtune.search.record import PluginRecord
from xtune.search.report import pareto_front
from xtune.search.storage import is_database, open_storage
from xtune.search.study import artifacts_dir, create_study, fresh_seed
from xtune.search.worker import (
    TRANSIENT,
    GracefulInterrupt,
    Inputs,
    WorkerArgs,
    run_worker,
)
from xtune.settings import Settings, configure_logging


def prepare_inputs(
    config: StudyConfig, settings: Settings, data: str | None = None, progress: bool = False
) -> Inputs:
    """Load and check the bars, then build every candidate feature once (cached by data hash)."""
    feature_set = config.features.feature_set  # the catalog, the study's plugins and columns
    bars = load_bars(data or config.data.source, columns=config.features.columns)
    worst = DataSpec(
        features=config.features.candidates,
        window=int(highest(config.data.window)),
        labels=config.labels,
        split=config.split,
    )
    if len(bars) < worst.min_bars(feature_set):
        raise SpecError(
            f"{bars.source}: {len(bars)} bars, but this study's largest window ({worst.window}) "
            f"with all candidate features needs {worst.min_bars(feature_set)}. Use more bars, "
            "a smaller [data] window range, or fewer long-window features."
        )
    audited = preflight(config.features.candidates, bars, feature_set)  # before any trial
    for feature in audited.features if audited is not None else ():
        if feature.reads:
            logging.getLogger("xtune").warning(
                "feature %s reads %s while it computes: xtune cannot prove it free of look-ahead. "
                "Each row must use only what the file knew at that bar's close.",
                feature.name,
                ", ".join(feature.reads),
            )
    if config.features.columns:
        logging.getLogger("xtune").warning(
            "columns %s are read from the bars as they are: xtune cannot prove them free of "
            "look-ahead. Each row must use only data known at that bar's close.",
            list(config.features.columns),
        )
    candidates = build_features(
        bars,
        config.features.candidates,
        feature_set=feature_set,
        cache_dir=settings.cache_dir,
        progress=progress,
    )
    # each plugin's hash and the files it read, hashed once, for every trial's record
    plugins = tuple(PluginRecord.of(p, feature_set) for p in feature_set.plugins)
    return Inputs(bars, candidates, plugins)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_to(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Route Ctrl-C and SIGTERM (``docker stop``, ``kill``) to ``handler`` within the block."""
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)


def _worker_main(args: WorkerArgs, inputs: Inputs) -> None:
    # A spawned process starts with none of the parent's setup. Its study's own features
    # came with ``args``: unpickling its FeatureSet ran the plugin bytes the parent hashed.
    configure_logging()
    if args.visible is not None:  # before this process first touches CUDA
        os.environ["CUDA_DEVICE_ORDER"] = (
            "PCI_BUS_ID"  # GPU numbers as NVML and nvidia-smi give them
        )
        os.environ["CUDA_VISIBLE_DEVICES"] = args.visible
    interrupt = GracefulInterrupt()
    # On Ctrl-C Optuna has already marked the running trial FAIL; the parent reports.
    with signals_to(interrupt.handler), contextlib.suppress(KeyboardInterrupt):
        # held back since the parent started this process (see _start): one that came
        # meanwhile reaches the handler now, and the worker stops before its first trial
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        try:
            run_worker(args, inputs, interrupt)
        except XtuneError as exc:  # e.g. a space that never fits its caps: one line, exit 2
            logging.getLogger("xtune").error("worker %d: %s", args.worker, exc)
            sys.exit(2)


def run_search(
    config: StudyConfig,
    storage_url: str,
    settings: Settings,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    workers: int | str = 1,
    device: str = "cpu",
    data: str | None = None,
    allow_other_data: bool = False,
    artifacts: str | None = None,
    on_progress: Callable[[float, int, int], None] | None = None,
) -> optuna.Study:
    """Run the search; returns the study. ``on_progress(done, target, front_size)`` is called
    as trials finish. Ctrl-C or SIGTERM stops cleanly: the running trial(s) turn FAIL, finished
    ones stay. The first worker of the run that creates the study samples with the study's
    seed; every other worker, and every later run, draws a fresh seed (recorded per trial).
    ``workers="auto"``: as many as the GPUs hold (see :mod:`xtune.search.gpus`)."""
    require_device(device)
    if not is_database(storage_url):  # a damaged journal fails before the features are built
        check_journal(Path(storage_url))
    inputs = prepare_inputs(config, settings, data, progress=True)  # bad bars fail here
    slots = worker_slots(config, device, workers, len(inputs.bars))
    study, created = create_study(
        config, storage_url, settings, inputs.bars, other_data=allow_other_data
    )
    done = spent(study)
    target = math.ceil(done - 1e-9) + n_trials if n_trials is not None else config.study.trials
    art = str(artifacts_dir(storage_url, artifacts, settings))
    deadline = time.time() + timeout if timeout else None
    report = _reporter(on_progress, target)

    def args(k: int) -> WorkerArgs:
        seed = config.study.seed if created and k == 0 else fresh_seed()
        return WorkerArgs(
            config,
            settings,
            storage_url,
            target,
            slots[k].device,
            k,
            seed,
            art,
            deadline,
            slots[k].visible,
        )

    report(study, None)
    if len(slots) == 1 and slots[0].visible is None:
        interrupt = GracefulInterrupt()
        with signals_to(interrupt.handler):
            run_worker(args(0), inputs, interrupt, callback=report)
    else:
        _run_processes([args(k) for k in range(len(slots))], inputs, study, report)
    report(study, None)
    return study


def _reporter(
    on_progress: Callable[[float, int, int], None] | None, target: int
) -> Callable[[optuna.Study, FrozenTrial | None], None]:
    """``on_progress(done, target, front size)`` as a callback after each trial."""

    def report(study: optuna.Study, _: FrozenTrial | None) -> None:
        if on_progress is None:
            return
        # while the database restarts the bar skips updates and catches up once it is back
        with contextlib.suppress(*TRANSIENT):
            on_progress(spent(study), target, len(pareto_front(study)))

    return report


def _run_processes(
    all_args: list[WorkerArgs],
    inputs: Inputs,
    study: optuna.Study,
    report: Callable[[optuna.Study, FrozenTrial | None], None],
) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(a, inputs)) for a in all_args]
    started: list[Any] = []  # the processes started so far
    stopping: list[int] = []

    def forward(signum: int, frame: object) -> None:
        """A signal to the parent alone (``kill``, ``docker stop``) reaches every worker, which
        fails its running trial and exits; the parent waits for them, then stops too."""
        stopping.append(signum)
        for p in started:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    with signals_to(forward):
        for p in procs:
            if stopping:  # no worker starts after a stop was asked for
                break
            _start(p, started, stopping)
        while any(p.is_alive() for p in started):
            time.sleep(1.0)
            if not stopping:
                report(study, None)
        for p in started:
            p.join()
    if stopping:
        raise KeyboardInterrupt
    _after_dead_workers(all_args, inputs, study, report, [p.exitcode for p in started])


def _start(proc: Any, started: list[Any], stopping: list[int]) -> None:
    """Start one worker that a stop asked for meanwhile still reaches.

    The worker begins with Ctrl-C and SIGTERM held back (it inherits this thread's signal
    mask) and lets them through once its own handler is in place (:func:`_worker_main`), so
    a signal cannot kill it while it reads its inputs: ``start()`` writes them into a pipe
    whose other end the parent holds too, and would wait forever on a worker that died before
    reading them. The parent's handler may run during ``start()`` (another thread, such as
    the progress bar's, takes the signal), before the worker is in ``started``: hence the
    check after it.
    """
    # Started first: starting it inside start() would let the signals through again.
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    started.append(proc)
    if stopping:  # a second SIGTERM, where the handler saw it in `started`, changes nothing
        os.kill(proc.pid, signal.SIGTERM)


def _after_dead_workers(
    all_args: list[WorkerArgs],
    inputs: Inputs,
    study: optuna.Study,
    report: Callable[[optuna.Study, FrozenTrial | None], None],
    codes: list[int | None],
) -> None:
    """A worker died (killed, out of memory): once its trial counts as orphaned, fail and
    requeue it and run the retries here. The search fails, exit 2, only if the budget was
    not reached: a worker lost while the others finished the job is a warning."""
    bad = {k: c for k, c in enumerate(codes) if c not in (0, None)}
    if not bad:
        return
    for k, code in bad.items():
        logging.getLogger("xtune").warning("worker %d exited with code %s", k, code)
    first, settings = all_args[0], all_args[0].settings
    time.sleep(settings.grace_s + 1)
    if sweep(study, open_storage(first.storage, settings), grace_s=settings.grace_s):
        interrupt = GracefulInterrupt()
        with signals_to(interrupt.handler):
            run_worker(first, inputs, interrupt, callback=report)
    if spent(study) < first.target - 1e-9:
        raise XtuneError(
            f"worker(s) {sorted(bad)} exited with code(s) {sorted(set(bad.values()))} before the "
            f"budget was reached ({spent(study):.1f} of {first.target} trials spent); see the "
            "log above, then run the same command to resume."
        )
