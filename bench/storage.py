"""Storage throughput: trials/second and CPU ms per trial with 1, 2, 4, 8 workers, PostgreSQL
vs the embedded journal file, on a trivial objective, in one run.

    python bench/storage.py [--pg postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--trials 200]

Each worker process opens the storage as xtune does (pool_pre_ping, 1-2 connections per
worker, heartbeats on PostgreSQL) and runs ask/tell trials of a two-objective function with
the multivariate TPE sampler. Connections per worker are read from pg_stat_activity while the
workers run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
import uuid

import optuna
import sqlalchemy

from xtune.search.storage import open_storage


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_int("y", 0, 10)
    trial.set_user_attr("metrics/val_accuracy", 0.5)
    return (x - 1) ** 2 + y, -(x**2) + y


def _worker(url: str, name: str, target: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=name,
        storage=open_storage(url),
        sampler=optuna.samplers.TPESampler(seed=os.getpid()),
    )
    start = resource.getrusage(resource.RUSAGE_SELF)
    done = 0
    while (
        len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < target
    ):
        trial = study.ask()
        study.tell(trial, _objective(trial))
        done += 1
    end = resource.getrusage(resource.RUSAGE_SELF)
    out.put((done, (end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime) * 1e3))


def _connections(pg_url: str) -> int:
    engine = sqlalchemy.create_engine(pg_url)
    with engine.connect() as c:
        db = c.execute(sqlalchemy.text("SELECT current_database()")).scalar()
        n = c.execute(
            sqlalchemy.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
            ),
            {"d": db},
        ).scalar()
    engine.dispose()
    return int(n or 0)


def run(
    url: str, workers: int, trials: int, pg_url: str | None
) -> tuple[float, float, float | None]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    optuna.create_study(
        study_name=name, storage=open_storage(url), directions=["minimize", "minimize"]
    )
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_worker, args=(url, name, trials, queue)) for _ in range(workers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    conns = None
    if pg_url:  # peak while the workers run (they start slowly: spawned interpreters)
        peak = 0
        while all(p.is_alive() for p in procs) and queue.empty():
            peak = max(peak, _connections(pg_url))
            time.sleep(0.3)
        conns = peak / workers
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    done = sum(r[0] for r in results)
    cpu_ms = sum(r[1] for r in results) / max(done, 1)
    if pg_url:
        optuna.delete_study(study_name=name, storage=open_storage(url))
    return done / elapsed, cpu_ms, conns


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("TEST_DB_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    print(
        f"{'storage':<10} {'workers':>7} | {'trials/s':>8} {'CPU ms/trial':>12} {'conns/worker':>12}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2, 4, 8):
            for label, url, pg in (
                ("postgres", args.pg, args.pg),
                ("journal", f"{tmp}/bench_{workers}.journal", None),
            ):
                rate, cpu, conns = run(url, workers, args.trials, pg)
                shown = f"{conns:12.1f}" if conns is not None else f"{'-':>12}"
                print(f"{label:<10} {workers:>7} | {rate:8.1f} {cpu:12.1f} {shown}")


if __name__ == "__main__":
    main()
