"""Many workers on one study, measured: direct PostgreSQL against the storage proxy, in one run.

    python bench/scale.py [--pg postgresql+psycopg2://postgres@127.0.0.1:5433/wt_proxy]
        [--workers 8 32 128] [--trial-s 8] [--seconds 40] [--pool-size 8] [--processes 4]
        [--sampler tpe|random] [--storages direct proxy] [--ramp-s 0]

Simulated workers run xtune's real worker loop (``run_worker``: load_study, the sweep at start
and between trials, the budget callback, the cut-off bookkeeping, heartbeats: Optuna's on direct
PostgreSQL, xtune's own through the proxy) with the real sampler (multivariate TPE, constant
liar) drawing the real search space and writing the real trial records; only the training is
replaced, by a sleep of about ``--trial-s`` seconds. Each simulated worker is a thread with a
storage of its own, as a worker process has (its own connection pool on PostgreSQL, its own
gRPC channel to the proxy), so the server and the proxy see the connections and calls of that
many workers; the threads are spread over ``--processes`` spawned processes, because 128
processes that each import torch do not fit a 24 GB machine. Ask and tell times are wall
times inside those processes and include their GIL waits (an upper bound on the storage's).
By default every worker starts in the same instant, the worst case for the storage; with
``--ramp-s`` they start one after another over that many seconds, as processes started by
hand, by a scheduler or by compose do.

Per row: completed trials per second over the run; p50 and p99 of ``study.ask``, the p99 of
the asks after each worker's first (``later``: without the burst of every worker starting at
once), and p50 and p99 of the tell;
the most PostgreSQL connections seen in ``pg_stat_activity`` for the database (polled every
0.5 s; proxy rows include the proxy's own); errors (calls that raised, workers that ended on an
error, e.g. the connection limit); lost (trials whose objective returned but that are not
COMPLETE) and trials left RUNNING when the workers are gone (no sweep run after).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from _common import bench_study
from optuna.trial import TrialState

from xtune.search import StudyConfig, create_study
from xtune.search.record import DataRecord, TrialRecord, Worker, write
from xtune.search.run import prepare_inputs
from xtune.search.space import suggest
from xtune.search.storage import open_storage
from xtune.search.worker import GracefulInterrupt, Inputs, WorkerArgs
from xtune.settings import Settings


class SleepObjective:
    """The real objective's storage traffic (records, the sampler's draws), minus the training."""

    trial_s = 8.0
    returned = 0  # objectives that returned values, in this process

    def __init__(self, config: StudyConfig, bars: Any, candidates: Any, **kw: Any) -> None:
        self.config, self.data = config, DataRecord.of(bars)
        self.worker, self.first_row = Worker.here(kw["seed"]), len(bars) - len(candidates)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        write(trial, TrialRecord(status="running", worker=self.worker))
        plan = suggest(trial, self.config, first_row=self.first_row, bf16=False)
        write(trial, TrialRecord(plan=plan, data=self.data, feasible=True))
        time.sleep(self.trial_s * random.uniform(0.5, 1.5))
        SleepObjective.returned += 1
        return (random.uniform(0.5, 0.6), random.uniform(0.6, 0.7))


def _timed(
    record: list[float], errors: list[str], call: Any, firsts: list[float] | None = None
) -> Any:
    """``call``, its times appended to ``record``; with ``firsts``, each thread's first call's
    time goes there instead (the burst of every worker starting at once)."""
    seen = threading.local()

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            errors.append(type(exc).__name__)
            raise
        finally:
            elapsed = time.perf_counter() - start
            if firsts is not None and not getattr(seen, "called", False):
                seen.called = True
                firsts.append(elapsed)
            else:
                record.append(elapsed)

    return timed


def _process(url: str, config: StudyConfig, inputs: Inputs, ks: list[int], start: Any,
             times: tuple[float, float, int], art: str, out: Any) -> None:  # fmt: skip
    """``ks``'s workers as threads; once every process is up, worker k of n starts
    ``ramp_s * k / n`` seconds after the go (all together with no ramp), and none starts a
    trial after the deadline the parent then sets."""
    import optuna.study._optimize as optimize_module

    import xtune.search.worker as worker_module

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.basicConfig(level=logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    asks: list[float] = []
    first_asks: list[float] = []
    tells: list[float] = []
    errors: list[str] = []
    optuna.Study.ask = _timed(asks, errors, optuna.Study.ask, first_asks)  # type: ignore[method-assign]
    optimize_module._tell_with_warning = _timed(tells, errors, optimize_module._tell_with_warning)
    SleepObjective.trial_s, ramp_s, n = times
    worker_module.Objective = SleepObjective  # type: ignore[misc,assignment]

    out.put("ready")
    go, deadline = start
    go.wait()

    def one(k: int) -> None:
        time.sleep(ramp_s * k / n)
        args = WorkerArgs(config, Settings(), url, 10**6, "cpu", k, random.randrange(2**31), art,
                          deadline.value)  # fmt: skip
        try:
            worker_module.run_worker(args, inputs, GracefulInterrupt())
        except Exception as exc:
            errors.append(f"worker ended: {type(exc).__name__}: {str(exc)[:160]}")

    threads = [threading.Thread(target=one, args=(k,)) for k in ks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((asks, tells, errors, SleepObjective.returned, first_asks))


# The bench's own connections (the study's creation, the polling) carry this name and are
# not counted; nor are the server's own (autovacuum workers show the database too).
OWN = "xtune-bench-scale"


def _own(pg: str) -> str:
    return f"{pg}{'&' if '?' in pg else '?'}application_name={OWN}"


def _connections(c: sqlalchemy.Connection) -> int:
    return int(c.execute(sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND application_name <> :own"),
        {"own": OWN}).scalar() or 0)  # fmt: skip


def _start_proxy(pg: str, pool_size: int, log: Any) -> tuple[subprocess.Popen[bytes], str]:
    from xtune.search.proxy import open_proxy

    port = 13000 + random.randrange(2000)
    proc = subprocess.Popen([sys.executable, *os.environ.get("SCALE_PROXY", "-m xtune").split(), "storage-proxy", "--storage", pg,
                             "--port", str(port), "--pool-size", str(pool_size), "--timing"],
                            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    url = f"grpc://127.0.0.1:{port}"
    open_proxy(url, ready_s=120)
    return proc, url


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else float("nan")


def run(pg: str, url: str, workers: int, inputs: Inputs, args: argparse.Namespace,
        folder: Path) -> str:  # fmt: skip
    """One row: ``workers`` simulated workers on a fresh study through ``url``."""
    name = f"scale_{os.getpid()}_{workers}_{random.randrange(10**6)}"
    config = _renamed(bench_study(folder, trials=1000), name, args.sampler)
    create_study(config, _own(pg), Settings(), inputs.bars)
    engine = sqlalchemy.create_engine(_own(pg), poolclass=sqlalchemy.pool.NullPool)
    # held from the start (a full server refuses a new one); autocommit: pg_stat_activity is
    # a snapshot per transaction
    poll = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    ctx = mp.get_context("spawn")
    queue, go, deadline = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    n_proc = min(workers, args.processes)
    procs = [ctx.Process(target=_process, args=(url, config, inputs, list(range(workers))[i::n_proc],
                                                (go, deadline), (args.trial_s, args.ramp_s, workers), str(folder / "art"), queue))
             for i in range(n_proc)]  # fmt: skip
    for p in procs:
        p.start()
    assert [queue.get(timeout=600) for _ in procs] == ["ready"] * n_proc
    deadline.value = time.time() + args.seconds
    go.set()
    peak = 0
    while any(p.is_alive() for p in procs) and queue.qsize() < n_proc:
        peak = max(peak, _connections(poll))
        time.sleep(0.5)
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    trials = optuna.load_study(study_name=name, storage=open_storage(_own(pg))).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    running = sum(t.state == TrialState.RUNNING for t in trials)
    first = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    last = max((t.datetime_complete for t in complete if t.datetime_complete), default=None)
    span = (last - first).total_seconds() if first and last else float("nan")
    later = [a for r in results for a in r[0]]  # each worker's asks after its first
    asks = later + [a for r in results for a in r[4]]
    tells = [t for r in results for t in r[1]]
    errors = [e for r in results for e in r[2]]
    lost = sum(r[3] for r in results) - len(complete)
    optuna.delete_study(study_name=name, storage=open_storage(_own(pg)))
    poll.close()
    engine.dispose()
    print(f"    {len(complete)} trials complete, {len(trials)} in all", file=sys.stderr)
    for e in sorted(set(errors))[:3]:
        print(f"    error ({errors.count(e)}x): {e}", file=sys.stderr)
    return (f"{len(complete) / span:8.2f} {_pct(asks, .5):7.0f} {_pct(asks, .99):7.0f} "
            f"{_pct(later, .99):7.0f} "
            f"{_pct(tells, .5):7.0f} {_pct(tells, .99):7.0f} | {peak:8d} | {len(errors):6d} "
            f"{max(lost, 0):5d} {running:7d}")  # fmt: skip


def _renamed(config: StudyConfig, name: str, sampler: str | None) -> StudyConfig:
    from dataclasses import replace

    study = replace(config.study, name=name, sampler=sampler or config.study.sampler)
    return replace(config, study=study)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "TEST_DB_URL", "postgresql+psycopg2://postgres@127.0.0.1:5433/wt_proxy"
        ),
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--trial-s", type=float, default=8.0)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--ramp-s", type=float, default=0.0,
                        help="start the workers one after another over this many seconds "
                             "(default 0: all in the same instant)")  # fmt: skip
    parser.add_argument("--sampler", choices=("tpe", "random"),
                        help="the study's sampler (default: the bench study's, tpe); random "
                             "draws without reading the trials, so ask is the storage's calls")  # fmt: skip
    parser.add_argument("--storages", nargs="+", choices=("direct", "proxy"),
                        default=["direct", "proxy"])  # fmt: skip
    args = parser.parse_args()
    print(f"trial {args.trial_s:g} s (x0.5-1.5), {args.seconds:g} s of new trials per row, "
          f"proxy pool {args.pool_size}, workers started over {args.ramp_s:g} s; times in ms")  # fmt: skip
    print(f"{'storage':<8} {'workers':>7} | {'trials/s':>8} {'ask p50':>7} {'ask p99':>7} {'later':>7} "
          f"{'tell p50':>7} {'tell p99':>7} | {'PG conns':>8} | {'errors':>6} {'lost':>5} {'running':>7}")  # fmt: skip
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = prepare_inputs(bench_study(Path(tmp), trials=1000), Settings())
        for workers in args.workers:
            if "direct" in args.storages:
                row = run(args.pg, args.pg, workers, inputs, args, Path(tmp))
                print(f"{'direct':<8} {workers:>7} | {row}", flush=True)
            if "proxy" not in args.storages:
                continue
            log = Path(tmp) / f"proxy_{workers}.log"
            with log.open("wb") as sink:
                proxy, url = _start_proxy(args.pg, args.pool_size, sink)
                try:
                    row = run(args.pg, url, workers, inputs, args, Path(tmp))
                    cpu = _cpu_s(proxy.pid)
                finally:
                    proxy.terminate()
                    proxy.wait(timeout=60)
            print(f"{'proxy':<8} {workers:>7} | {row}", flush=True)
            print(f"    proxy CPU {cpu:.0f} s (user + system)", file=sys.stderr)
            timing = log.read_text().partition("time per call, served and queued:")[2]
            print("    " + timing.strip().replace("\n", "\n    "), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
