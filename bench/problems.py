"""Does the search find a model when there is one? Searches on bars with known answers.

    python bench/problems.py [--seeds 5] [--trials 60] [--samplers random,tpe,nsga2,gp]
        [--problems needle,spike,interaction,noise] [--early-stop off,on] [--jobs N]

Each problem (bench/_known.py) is bars whose per-bar probability of an up move is known, so the
best edge any predictor can reach on the test rows (the Bayes edge: the Bayes predictor's
accuracy minus the majority share, on the realized labels of those rows, as xtune scores a
model there) is known. For each problem, seed (its own bars and sampler seed, shared by all
samplers: paired), sampler and early-stopping setting, one search runs on a fresh journal
(``--jobs`` at once, one core each), then every trained trial is refit on train + validation
and scored once on the test part, as ``xtune export`` does. Per problem and sampler it prints:

- the median budget (trained trials; a stopped one counts its share) until the trial the
  export would pick at that point has a test edge of at least 80% of the Bayes edge, and
  until any trial has (the sampler found it, whether or not validation chose it), each with
  its value per seed in brackets ("—": never);
- the exported winner's test edge over the Bayes edge, and over the best test edge among all
  trained trials (the price of choosing on validation);
- on ``noise``: front trials the luck guard marks, and the winner's test edge in standard
  errors (|z| <= 2 expected).

A sampler that reaches 80% in at most half of random's trials on ``needle`` and
``interaction`` and is no worse on ``noise`` is named the default; otherwise random stays.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from _common import pin
from _known import PROBLEMS, make_problem
from _scoring import REACH, outcome, reach, test_trials

from xtune.search import load_study_config, run_search
from xtune.settings import Settings

STUDY = """
[study]
name = "problems"
trials = {trials}
seed = {seed}
sampler = "{sampler}"
objectives = ["accuracy", "loss"]

[data]
source = "{source}"
window = [16, 64]
window_step = 16

[labels]
horizons = [1]
classes = 2

[split]
val = 0.2
test = 0.15

[features]
unit = "group"

[model]
families = ["lstm"]

[model.lstm]
hidden = [8, 32]
layers = [1, 2]

[train]
epochs = {epochs}
patience = 3
batch_size = 256
lr = [1e-3, 2e-2]
weight_decay = [1e-4, 1e-1]
dropout = [0.0, 0.2]
return_weight = [0.0, 0.5]

[caps]
max_width = 32
max_depth = 2
max_params = 40000
max_latency_ms = 5.0

[search]
early_stop = {early_stop}
"""


def _bars_file(folder: Path, problem: str, seed: int, bars: int) -> Path:
    return folder / f"{problem}_{seed}_{bars}.csv"


def one_run(folder: str, problem: str, sampler: str, seed: int, early_stop: bool,
            args: argparse.Namespace) -> dict:  # fmt: skip
    """One search and its scores, as a plain dict (it crosses a process boundary)."""
    root = Path(folder)
    stem = f"{problem}_{sampler}_{seed}_{'es' if early_stop else 'plain'}"
    path = root / f"{stem}.toml"
    path.write_text(STUDY.format(trials=args.trials, seed=seed, sampler=sampler,
                                 source=_bars_file(root, problem, seed, args.bars).name,
                                 epochs=args.epochs, early_stop=str(early_stop).lower()))  # fmt: skip
    config = load_study_config(path)
    settings = Settings(cache_dir=root / "cache")
    start = time.perf_counter()
    study = run_search(config, str(root / f"{stem}.journal"), settings)
    searched = time.perf_counter() - start
    tests = test_trials(config, study, make_problem(problem, args.bars, seed=seed), settings)
    r, o = reach(study, tests), outcome(study, tests)
    row = {"problem": problem, "sampler": sampler, "seed": seed, "early_stop": early_stop,
           "reach": r.winner, "reach_any": r.any_trial, "search_s": searched,
           "seconds": time.perf_counter() - start, "share": math.nan, "price": math.nan,
           "z": math.nan, "edge": math.nan, "bayes": math.nan, "bayes_expected": math.nan,
           "front": 0, "lucky": 0, "trained": 0}  # fmt: skip
    if o is not None:
        row |= {"share": o.winner.share, "price": o.price, "z": o.z, "edge": o.winner.edge,
                "bayes": o.winner.bayes.edge, "bayes_expected": o.winner.bayes.expected_edge,
                "front": o.front, "lucky": o.front_lucky, "trained": o.trained}  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", default="random,tpe,nsga2,gp")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--early-stop", default="off,on", help="off, on or off,on")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="keep bars, study files and journals here")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                        help="searches at once, one core each (default: the cores here)")  # fmt: skip
    args = parser.parse_args()
    problems, samplers = args.problems.split(","), args.samplers.split(",")
    stops = [{"off": False, "on": True}[s] for s in args.early_stop.split(",")]
    ctx = mp.get_context("spawn")
    rows: list[dict] = []
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        for problem in problems:  # the bars, once, before the pool reads them
            for seed in range(args.seeds):
                make_problem(problem, args.bars, seed=seed).bars.to_csv(
                    _bars_file(root, problem, seed, args.bars)
                )
        pool = ProcessPoolExecutor(args.jobs, ctx, initializer=pin, initargs=(ctx.Value("i", 0),))
        with pool:
            jobs = [pool.submit(one_run, str(root), p, s, seed, es, args)
                    for seed in range(args.seeds) for p in problems for es in stops
                    for s in samplers]  # fmt: skip
            for done in as_completed(jobs):
                rows.append(row := done.result())
                print(f"{row['problem']} {row['sampler']} seed {row['seed']} early stop "
                      f"{row['early_stop']}: reach {row['reach']:.1f} (any {row['reach_any']:.1f}), "
                      f"winner {row['share']:.2f} of Bayes, z {row['z']:+.1f}, "
                      f"{row['seconds']:.0f} s", flush=True)  # fmt: skip
    wall = time.perf_counter() - begin
    report(rows, args, wall)


def _mean(values: list[float]) -> str:
    """The mean of the finite values ("—" where none is: no Bayes edge on noise)."""
    finite = [v for v in values if math.isfinite(v)]
    return f"{np.mean(finite):.2f}" if finite else "—"


def _median(values: list[float]) -> str:
    m = float(np.median(values))
    return "never" if math.isinf(m) else f"{m:.1f}"


def report(rows: list[dict], args: argparse.Namespace, wall: float) -> None:
    print(f"\n{args.trials} trials per search, {args.seeds} seed(s), {args.bars} bars, "
          f"{args.epochs} epochs; {REACH:.0%} of the Bayes edge; wall {wall:.0f} s with "
          f"{args.jobs} job(s), {np.mean([r['seconds'] for r in rows]):.0f} s per search (search "
          f"and refits)\n")  # fmt: skip
    print("| problem | early stop | sampler | Bayes edge (realized / expected) | budget until the "
          "winner reaches 80% (median) | until any trial does | reached (seeds) | winner test "
          "edge / Bayes edge | winner / best trial's test edge | front marked lucky | winner "
          "test edge z |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted({(r["problem"], r["early_stop"], r["sampler"]) for r in rows}):
        g = [r for r in rows if (r["problem"], r["early_stop"], r["sampler"]) == key]
        reached = sum(math.isfinite(r["reach"]) for r in g)
        print(f"| {key[0]} | {'on' if key[1] else 'off'} | {key[2]} | "
              f"{np.mean([r['bayes'] for r in g]):+.3f} / {np.mean([r['bayes_expected'] for r in g]):+.3f} | "
              f"{_median([r['reach'] for r in g])} ({_per_seed(g, 'reach')}) | "
              f"{_median([r['reach_any'] for r in g])} ({_per_seed(g, 'reach_any')}) | "
              f"{reached}/{len(g)} | {_mean([r['share'] for r in g])} | "
              f"{_mean([r['price'] for r in g])} | "
              f"{sum(r['lucky'] for r in g)}/{sum(r['front'] for r in g)} | "
              f"{_zs(g)} |")  # fmt: skip
    for es in sorted({r["early_stop"] for r in rows}):
        print(verdict([r for r in rows if r["early_stop"] == es], es))


def _per_seed(rows: list[dict], key: str) -> str:
    """Each seed's value, in seed order ("—": never)."""
    ordered = sorted(rows, key=lambda r: r["seed"])
    return ", ".join("—" if math.isinf(r[key]) else f"{r[key]:g}" for r in ordered)


def _zs(rows: list[dict]) -> str:
    return ", ".join(f"{r['z']:+.1f}" for r in rows)


def _noise_ok(rows: list[dict]) -> int:
    """Searches on noise where the guard marked every front trial and |z| <= 2."""
    return sum(r["lucky"] == r["front"] and abs(r["z"]) <= 2 for r in rows)


def verdict(rows: list[dict], early_stop: bool) -> str:
    """The default-sampler rule, on this table."""

    def med(problem: str, sampler: str) -> float:
        return float(np.median([r["reach"] for r in rows
                                if r["problem"] == problem and r["sampler"] == sampler]))  # fmt: skip

    def noise(sampler: str) -> int:
        return _noise_ok([r for r in rows if r["problem"] == "noise" and r["sampler"] == sampler])

    problems = {r["problem"] for r in rows}
    needed = {"needle", "interaction", "noise"}
    head = f"early stopping {'on' if early_stop else 'off'}: "
    if not needed <= problems or "random" not in {r["sampler"] for r in rows}:
        return head + "no verdict (needs needle, interaction, noise and random)"
    winners = []
    for s in sorted({r["sampler"] for r in rows} - {"random"}):
        fast = all(
            math.isfinite(med(p, s)) and med(p, s) <= 0.5 * med(p, "random")
            for p in ("needle", "interaction")
        )
        if fast and noise(s) >= noise("random"):
            winners.append(s)
    if not winners:
        return (
            head
            + "no sampler reached 80% in half of random's trials on needle and interaction; random stays"
        )
    best = min(winners, key=lambda s: med("needle", s) + med("interaction", s))
    return head + f"{best} becomes the default (passing: {', '.join(winners)})"


if __name__ == "__main__":
    main()
