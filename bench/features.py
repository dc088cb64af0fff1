"""Benchmark the data side: full catalog on 100k bars, and window memory vs the plain way.

    python bench/features.py [--bars 100000]

Prints (1) the time to build the whole feature catalog, cold and from the cache,
(2) the memory that training windows take for several window lengths: xtune's zero-copy views
against the plain way of stacking a copy of every window (``np.stack``), in the same run, and
(3) the indicators the catalog computes with its own arrays (features/_indicators.py), timed
against the ``ta`` library's classes they replaced, on a live bot's tail of bars (the cost per
new bar) and on all bars (the cost per training build).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from xtune.features import CATALOG, Bars, DataSpec, build_features, history_of, load_bars, prepare
from xtune.features._indicators import by_ta
from xtune.features.sample import synthetic_bars


def _mb(n: float) -> str:
    return f"{n / 1e6:9.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=100_000)
    args = parser.parse_args()

    bars = load_bars(synthetic_bars(args.bars), name=f"synthetic[{args.bars}]")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        t0 = time.perf_counter()
        frame = build_features(bars, None, cache_dir=cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_features(bars, None, cache_dir=cache)
        warm = time.perf_counter() - t0
        print(f"catalog: {len(CATALOG)} features x {len(bars):,} bars")
        print(f"  build (cold)        {cold:7.2f} s")
        print(f"  build (from cache)  {warm:7.2f} s   ({cold / warm:.0f}x faster)")

        print("\nwindows of the training part, float32:")
        print(f"  {'window':>6} | {'xtune views':>12} | {'plain np.stack':>14} | ratio")
        for window in (30, 60, 120, 250, 500):
            spec = DataSpec(window=window)
            tracemalloc.start()
            ds = prepare(bars, spec, cache_dir=cache, features=frame)
            part = ds.train()
            _ = part.x  # the [N, L, F] view a trainer indexes
            views = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            # The plain way: a Python list of window copies stacked into one array.
            fold = ds.folds[0]
            tracemalloc.start()
            ends = part.ends
            plain = np.stack([fold.x[t - window + 1 : t + 1] for t in ends])
            copies = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert np.array_equal(plain, part.x)
            print(f"  {window:>6} | {_mb(views):>12} | {_mb(copies):>14} | {copies / views:5.0f}x")
            del plain
        print("\nxtune's figure is the whole prepared data set (all folds' scaled arrays); it does")
        print("not grow with the window. The plain copy grows linearly with it.")
    indicators(bars)


def _best_of(call: object, repeats: int) -> float:
    """The fastest of ``repeats`` calls' CPU time, in seconds (other load does not inflate it)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        call()  # type: ignore[operator]
        times.append(time.process_time() - t0)
    return min(times)


def indicators(bars: Bars) -> None:
    """The array versions against ``ta``'s classes, each feature timed alone, CPU time."""
    reference = by_ta()
    tail = bars.frame.iloc[-(history_of(list(reference)) + 64) :]  # a bot's buffer, window 64
    print(f"\nthe {len(reference)} indicators on arrays vs ta's classes (best of many, CPU ms):")
    print(f"| feature | ta, {len(tail)} bars | arrays, {len(tail)} bars | ta, {len(bars):,} bars "
          f"| arrays, {len(bars):,} bars |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    sums = np.zeros(4)
    for name, by_ta_fn in reference.items():
        ours = CATALOG[name].fn
        row = np.array([_best_of(lambda f=f, x=x: f(x), n) * 1e3  # type: ignore[misc]
                        for x, n in ((tail, 200), (bars.frame, 3)) for f in (by_ta_fn, ours)])  # fmt: skip
        sums += row
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    print(f"| **all {len(reference)}** | " + " | ".join(f"**{v:.1f}**" for v in sums) + " |")


if __name__ == "__main__":
    main()
