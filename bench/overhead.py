"""What a search worker spends around each trial, outside training: the previous way and now.

    python bench/overhead.py [--trials 12] [--epochs 2]

A trial that early stopping ends after two epochs trains for a fraction of a second on the
bench study, so whatever the worker does around it (Optuna's garbage collection after each
trial, the learning-curve plot, storing the record) decides what a stopped trial costs. The
same bench study (bench/_common.py, a short fixed number of epochs) runs twice, each in a
fresh process pinned to one core, one after the other:

- previous: Optuna's full ``gc.collect()`` after each trial walks every object of the
  process, and the learning curve is drawn through pyplot with ``tight_layout``;
- now: the worker freezes the objects that survive each trial (``worker.FreezeSurvivors``),
  so the collection sees only the new ones, and the curve is a bare Agg figure.

For each it reports the CPU seconds per trial, the training seconds inside it (what the
trial's record says training took) and the difference: the worker's overhead per trial.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

from _common import CpuClock, bench_study, pin

from xtune.models import Metrics
from xtune.search import objective, read, run_search, worker
from xtune.search.record import status_of
from xtune.settings import Settings


def previous_png(metrics: Metrics, path: Path, title: str) -> Path:
    """The learning curve as it was drawn before: pyplot, tight_layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    curve = metrics.log.curve
    epochs = [r.epoch for r in curve]
    ax1.plot(epochs, [r.train_loss for r in curve], label="train loss")
    ax1.plot(epochs, [r.val_loss for r in curve], label="val log loss")
    ax1.legend()
    ax2.plot(epochs, [r.val_accuracy for r in curve], label="val accuracy")
    ax2.axhline(metrics.val.baseline, color="grey", linestyle="--", label="majority baseline")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def one_run(folder: str, way: str, trials: int, epochs: int) -> dict[str, float]:
    if way == "previous":
        worker.FreezeSurvivors.__call__ = lambda *_: None  # type: ignore[method-assign]
        objective.learning_curve_png = previous_png
    config = bench_study(Path(folder), sampler="random", trials=trials, epochs=epochs)
    clock = CpuClock()
    study = run_search(config, str(Path(folder) / f"{way}_{time.time()}.journal"), Settings(),
                       on_progress=clock)  # fmt: skip
    trained = [t for t in study.trials if status_of(t) == "ok"]
    # CPU time from the end of the first trained trial to the end of the run, per trial after
    # it: the first trial pays one-time imports (matplotlib, torch's optimizers) either way.
    first = min(t.datetime_complete for t in trained)  # type: ignore[type-var]
    cpu = clock.ticks[-1][1] - next(c for wall, c in clock.ticks if wall >= first)
    later = [t for t in trained if t.datetime_complete > first]  # type: ignore[operator]
    rest = [t for t in study.trials if t.datetime_complete and t.datetime_complete > first]
    train_s = sum(read(t).metrics.log.seconds for t in later)  # type: ignore[union-attr]
    return {"trials": len(rest), "cpu": cpu / len(rest), "train": train_s / len(rest)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, alternating")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    rows: dict[str, list[dict[str, float]]] = {"previous": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        bench_study(Path(tmp))  # the bars, once
        for _ in range(args.repeats):
            for way in rows:
                with ctx.Pool(1, initializer=pin, initargs=(ctx.Value("i", 0),)) as pool:
                    rows[way].append(pool.apply(one_run, (tmp, way, args.trials, args.epochs)))
    print(f"\nbench study, {args.epochs} epochs, 1 fold, {args.trials} trials per run, "
          f"{args.repeats} runs of each way; median per trial after the first:\n")  # fmt: skip
    print("| way | CPU s per trial | of it training | overhead per trial |")
    print("|---|---:|---:|---:|")
    for way, runs in rows.items():
        cpu = statistics.median(r["cpu"] for r in runs)
        train = statistics.median(r["train"] for r in runs)
        print(f"| {way} | {cpu:.3f} | {train:.3f} | {cpu - train:.3f} |")


if __name__ == "__main__":
    main()
