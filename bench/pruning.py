"""Does early stopping save time? The same study with and without it, several seeds.

    python bench/pruning.py [--trials 60] [--seeds 5] [--first-seed 100] [--epochs 16] [--folds 3]

For each seed, the bench study (bench/_common.py: synthetic momentum bars, LSTM, feature
groups, window and training settings under a cap; the default random sampler; walk-forward
folds and a patience, shaped like studies/gpu_eurusd.toml at a CPU's size) runs twice on a
fresh journal with the same sampler seed: once with ``[search] early_stop = false`` and once
with it on, both with the same budget (a stopped trial costs the compute it used). The random
sampler draws the same configurations in the same order in both runs, so the two differ only
by what early stopping does. The two runs go side by side, each in a process of its own on a
core of its own, and time is each process's CPU time, so other load on the machine does not
tilt the comparison (wall time is reported too). From each run's feasible-front hypervolume
over time it reports the time the plain run took to reach its final hypervolume, the time
the early-stopping run took to reach that same value, and both final hypervolumes, then the
means with standard errors. The default seeds (100...) are not the ones the rule's shares
were chosen on (0-3, README).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from _common import CpuClock, bench_study, hv_at, mean_se, pin, time_to_reach, trajectory

from xtune.search import pruning, run_search
from xtune.search.budget import is_stopped
from xtune.settings import Settings


def one_run(folder: str, seed: int, early_stop: bool, args: argparse.Namespace) -> dict:
    _set_rule(args)  # in this process
    config = bench_study(Path(folder), seed=seed, trials=args.trials, epochs=args.epochs,
                         folds=args.folds, early_stop=early_stop, families=args.families,
                         sampler=args.sampler, bars=args.bars, momentum=args.momentum)  # fmt: skip
    clock = CpuClock()
    study = run_search(config, str(Path(folder) / f"{seed}_{early_stop}.journal"), Settings(),
                       on_progress=clock)  # fmt: skip
    stopped = sum(1 for t in study.get_trials(deepcopy=False) if is_stopped(t))
    return {
        "curve": trajectory(study, clock),
        "wall": trajectory(study),
        "trials": len(study.trials),
        "stopped": stopped,
    }


def _set_rule(args: argparse.Namespace) -> None:
    pruning.STOP_SHARE, pruning.FOLD_STOP_SHARE = args.stop_share, args.fold_stop_share
    pruning.FIRST_EPOCH = args.first_epoch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--families", default='["lstm"]')
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--bars", type=int, default=3000)
    parser.add_argument("--momentum", type=float, default=0.15,
                        help="the synthetic bars' effect (default: the sample's)")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep the journals in this folder")
    parser.add_argument("--stop-share", type=float, default=pruning.STOP_SHARE,
                        help="at an epoch rung, stop when this share of the others rank "
                        "better (default: xtune's)")  # fmt: skip
    parser.add_argument("--fold-stop-share", type=float, default=pruning.FOLD_STOP_SHARE,
                        help="the same at a fold rung (default: xtune's)")  # fmt: skip
    parser.add_argument("--first-epoch", type=int, default=pruning.FIRST_EPOCH,
                        help="the first epoch rung (then x3; default: xtune's)")  # fmt: skip
    args = parser.parse_args()
    _set_rule(args)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    ctx = mp.get_context("spawn")
    runs: dict[tuple[int, bool], dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.keep or scratch)
        Path(tmp).mkdir(parents=True, exist_ok=True)
        bench_study(Path(tmp), bars=args.bars, momentum=args.momentum)  # the bars, once
        pool = ProcessPoolExecutor(2, ctx, initializer=pin, initargs=(ctx.Value("i", 0),))
        with pool:
            jobs = {pool.submit(one_run, tmp, seed, es, args): (seed, es)
                    for seed in seeds for es in (False, True)}  # fmt: skip
            for done in as_completed(jobs):
                runs[jobs[done]] = done.result()
    rows = [_row(seed, runs[seed, False], runs[seed, True]) for seed in seeds]
    report(rows, args)


def _row(seed: int, plain: dict, early: dict) -> dict:
    target = plain["curve"][-1][1]
    r = {"seed": seed, "target": target, "t_plain": time_to_reach(plain["curve"], target),
         "t_early": time_to_reach(early["curve"], target), "end_plain": plain["curve"][-1][0],
         "end_early": early["curve"][-1][0], "hv_early": early["curve"][-1][1],
         "hv_early_same_time": hv_at(early["curve"], plain["curve"][-1][0]),
         "trials_early": early["trials"], "stopped": early["stopped"],
         "wall_ratio": time_to_reach(plain["wall"], target) / time_to_reach(early["wall"], target)}  # fmt: skip
    print(f"seed {seed}: plain HV {target:.5f} reached at {r['t_plain']:.0f} CPU s (run "
          f"{r['end_plain']:.0f}); early stopping reached it at {r['t_early']:.0f} CPU s, final "
          f"HV {r['hv_early']:.5f} (run {r['end_early']:.0f}, {r['trials_early']} trials, "
          f"{r['stopped']} stopped)", flush=True)  # fmt: skip
    return r


def report(rows: list[dict], args: argparse.Namespace) -> None:
    ratios = [r["t_plain"] / r["t_early"] for r in rows]
    reached = sum(math.isfinite(r["t_early"]) for r in rows)
    print(f"\na budget of {args.trials} trials per run, {args.epochs} epochs, {args.folds} "
          f"fold(s), {args.bars} bars (momentum {args.momentum:g}), {args.sampler} sampler, seeds {rows[0]['seed']}-{rows[-1]['seed']}; stop "
          f"share {args.stop_share:.2f} at epoch rungs {sorted(pruning.rung_epochs(args.epochs))}"
          f", {args.fold_stop_share:.2f} at fold rungs\n")  # fmt: skip
    print("| | no early stopping | early stopping |")
    print("|---|---|---|")
    for label, key_a, key_b in (("final hypervolume", "target", "hv_early"),
                                ("CPU time of the run (s)", "end_plain", "end_early"),
                                ("CPU time to reach the plain run's final HV (s)", "t_plain", "t_early")):  # fmt: skip
        a, b = mean_se([r[key_a] for r in rows]), mean_se([r[key_b] for r in rows])
        print(f"| {label} | {a[0]:.5f} ± {a[1]:.5f} | {b[0]:.5f} ± {b[1]:.5f} |"
              if "hyper" in label else f"| {label} | {a[0]:.0f} ± {a[1]:.0f} | {b[0]:.0f} ± {b[1]:.0f} |")  # fmt: skip
    same = mean_se([r["hv_early_same_time"] for r in rows])
    print(f"| hypervolume at the plain run's end time | — | {same[0]:.5f} ± {same[1]:.5f} |")
    stopped = mean_se([r["stopped"] / r["trials_early"] for r in rows])
    print(f"| share of trials stopped early | — | {stopped[0]:.0%} |")
    print(f"\nearly stopping reached the plain run's final hypervolume in {reached} of "
          f"{len(rows)} seeds; speed-up to reach it: median "
          f"{float(np.median(ratios)):.2f}x (per seed: {', '.join(f'{x:.2f}' for x in ratios)})")  # fmt: skip
    walls = [r["wall_ratio"] for r in rows]
    print(f"in wall time: median {float(np.median(walls)):.2f}x "
          f"(per seed: {', '.join(f'{x:.2f}' for x in walls)})")  # fmt: skip


if __name__ == "__main__":
    main()
