"""Does the sampler earn its keep? Feasible front hypervolume after N trials, per sampler.

    python bench/search.py [--trials 60] [--seeds 5] [--samplers tpe,random,nsga2,gp]

Runs the bench study (bench/_common.py: synthetic momentum bars, LSTM, feature groups, window
and training settings under a cap; cheap enough for hundreds of trials on a 2-core CPU) with
each sampler and seed on a fresh journal: the same budget of trained trials and the same data
(``--jobs`` runs at once, each on a core of its own).
Early stopping is off, so every sampler sees the same kind of trials. It computes the
hypervolume of the feasible Pareto front (validation accuracy up, log loss down) against the
reference point (accuracy 0.5, loss 0.70), and prints per sampler the mean, its standard
error, the ratio to random and a paired t-test against random over the seeds (each seed's
runs share the sampler seed and the data), all from this one run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from _common import bench_study, mean_se, trajectory
from scipy import stats

from xtune.search import run_search
from xtune.settings import Settings


def _pin(counter: Any) -> None:
    """Give each pool process a core of its own: tiny models train fastest on one thread."""
    with counter.get_lock():
        core, counter.value = counter.value, counter.value + 1
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[core % len(cores)]})
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def one_run(folder: str, sampler: str, seed: int, trials: int, epochs: int) -> tuple[float, float]:
    """(feasible front hypervolume, seconds) of one sampler and seed."""
    config = bench_study(Path(folder), sampler=sampler, seed=seed, trials=trials, epochs=epochs)
    start = time.perf_counter()
    study = run_search(config, str(Path(folder) / f"{sampler}_{seed}.journal"), Settings())
    return trajectory(study)[-1][1], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", default="tpe,random,nsga2,gp")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                        help="runs at once, one core each (default: the cores here)")  # fmt: skip
    args = parser.parse_args()
    samplers = args.samplers.split(",")
    hv: dict[str, list[float]] = {s: [0.0] * args.seeds for s in samplers}
    seconds: dict[str, list[float]] = {s: [0.0] * args.seeds for s in samplers}
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        bench_study(Path(tmp))  # writes the bars once, before the pool reads them
        pool = ProcessPoolExecutor(args.jobs, ctx, initializer=_pin, initargs=(ctx.Value("i", 0),))
        with pool:
            jobs = {pool.submit(one_run, tmp, s, seed, args.trials, args.epochs): (s, seed)
                    for seed in range(args.seeds) for s in samplers}  # fmt: skip
            for done in as_completed(jobs):
                sampler, seed = jobs[done]
                hv[sampler][seed], seconds[sampler][seed] = done.result()
                print(f"seed {seed} {sampler:>6}: hypervolume {hv[sampler][seed]:.5f}, "
                      f"{seconds[sampler][seed]:.0f} s", flush=True)  # fmt: skip
    table(hv, seconds, args)


def table(
    hv: dict[str, list[float]], seconds: dict[str, list[float]], args: argparse.Namespace
) -> None:
    print(f"\nfeasible front hypervolume after {args.trials} trained trials, {args.seeds} seeds\n")
    print("| sampler | mean HV | SE | vs random | paired t-test vs random (p) | s per run |")
    print("|---|---|---|---|---|---|")
    rnd = hv.get("random")
    for sampler, values in hv.items():
        mean, se = mean_se(values)
        ratio, p = "—", "—"
        if rnd is not None and sampler != "random":
            ratio = f"{mean / np.mean(rnd):.2f}x"
            p = f"{stats.ttest_rel(values, rnd).pvalue:.3f}"
        print(
            f"| {sampler} | {mean:.5f} | {se:.5f} | {ratio} | {p} | {np.mean(seconds[sampler]):.0f} |"
        )


if __name__ == "__main__":
    main()
