"""Does the sampler earn its keep? Feasible Pareto hypervolume after N trials, TPE vs random.

    python bench/search.py [--trials 24] [--seeds 3] [--study studies/quickstart.toml]

Runs the sample study with each sampler and seed on a fresh in-memory journal (same budget,
same data), computes the hypervolume of the feasible Pareto front (validation accuracy up,
log loss down) against the reference point (accuracy 0.5, loss 0.70), and prints the
mean per sampler and the ratio TPE / random, all from this one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from xtune.search import load_study_config, pareto_front, run_search
from xtune.settings import Settings

REFERENCE = (0.5, 0.70)  # (accuracy, loss): a point any useful model beats on both


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by (accuracy up, loss down) points and bounded by REFERENCE: sweep the
    points by falling accuracy; each strip down to the next accuracy is covered from the
    lowest loss seen so far up to the reference loss."""
    kept = sorted(
        (p for p in points if p[0] > REFERENCE[0] and p[1] < REFERENCE[1]), key=lambda p: -p[0]
    )
    area, best_loss = 0.0, REFERENCE[1]
    for i, (acc, loss) in enumerate(kept):
        best_loss = min(best_loss, loss)
        next_acc = kept[i + 1][0] if i + 1 < len(kept) else REFERENCE[0]
        area += (acc - next_acc) * (REFERENCE[1] - best_loss)
    return area


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", default="studies/quickstart.toml")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    base = load_study_config(args.study)
    results: dict[str, list[float]] = {"tpe": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for sampler in results:
                config = dataclasses.replace(
                    base,
                    study=dataclasses.replace(
                        base.study,
                        name=f"{sampler}_{seed}",
                        sampler=sampler,
                        seed=seed,
                        trials=args.trials,
                    ),
                )
                start = time.perf_counter()
                journal = str(Path(tmp) / f"{sampler}_{seed}.journal")
                study = run_search(config, journal, Settings.from_env())
                points = [(t.values[0], t.values[1]) for t in pareto_front(study)]
                hv = hypervolume(points)
                results[sampler].append(hv)
                print(f"seed {seed} {sampler:>6}: hypervolume {hv:.5f}, front {len(points)}, "
                      f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    tpe, rnd = float(np.mean(results["tpe"])), float(np.mean(results["random"]))
    print(f"\nmean hypervolume after {args.trials} trials over {args.seeds} seeds: "
          f"TPE {tpe:.5f}, random {rnd:.5f}, ratio {tpe / rnd if rnd else float('inf'):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
