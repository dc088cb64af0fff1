"""Live trading: what one new bar costs the bot, bar in to probabilities out, and its memory.

    python bench/live.py [--bars 500] [--cli-calls 3] [--batch-calls 10]
    python bench/live.py --bundle bundles/a --bundle bundles/b --data sample:eurusd

Builds three bundles with a short fixed training (one epoch) on the built-in synthetic bars: a
quickstart-like small LSTM (32x1, returns + momentum features, window 32), an LSTM 128x2 and an
xLSTM 64 ([mLSTM, sLSTM], 4 heads), both on the catalog's first 40 features at window 64.
Then, on this CPU with one onnxruntime thread, per model:

- ``Predictor.update()``: one new bar per call over ``--bars`` consecutive bars, p50 and p99;
- the batch Python path, ``xtune.runtime.predict(bundle, history, last=True)`` on the full
  history so far (about 5,500 bars), per bar;
- the current CLI path, ``xtune predict BUNDLE --data BARS.csv --last`` as a subprocess, per bar;
- the bot's RSS: ``ru_maxrss`` of a subprocess that imports only ``xtune.runtime`` (no torch,
  no optuna: checked) and runs the Predictor over the same bars.

With ``--bundle`` it measures exported bundles (yours) on ``--data`` instead of building.
Prints a markdown table; every figure is measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xtune.export import export_bundle, pick_trial
from xtune.features import CATALOG, Bars, load_bars, resolve
from xtune.features.sample import synthetic_bars
from xtune.runtime import Predictor, load_bundle, predict
from xtune.search import create_study, enqueue, load_study_config, resolve_storage, run_search
from xtune.search.config import EnqueueEntry
from xtune.settings import Settings

N_BARS = 6000
TRAIN_BARS = 2000  # the bundles train on the first ones (a short, fixed training)
STUDY = """
[study]
name = "live_{key}"
trials = 1
seed = 0
objectives = ["accuracy", "loss"]

[data]
source = "bars.csv"
window = {window}

[features]
groups = []
names = {names}

[model]
families = ["{family}"]

[model.lstm]
hidden = {hidden}
layers = {layers}

[model.xlstm]
embed = 64
heads = 4
blocks = 2

[train]
epochs = 1
patience = 1
batch_size = 256
lr = 2e-3
weight_decay = 1e-3
dropout = 0.0
return_weight = 0.2

[caps]
max_width = 128
max_depth = 2
max_params = 10_000_000
max_latency_ms = 1000.0
"""
FORTY = tuple(CATALOG)[:40]
MODELS = {  # key: (label, family, features, window, hidden, layers)
    "small": ("small LSTM 32x1 (quickstart-like)", "lstm",
              resolve(groups=["returns", "momentum"]), 32, 32, 1),
    "lstm": ("LSTM 128x2", "lstm", FORTY, 64, 128, 2),
    "xlstm": ("xLSTM 64 [m, s]", "xlstm", FORTY, 64, 64, 1),
}  # fmt: skip


def make_bundle(root: Path, key: str) -> Path:
    """Search one enqueued trial (every listed feature on) with the fixed settings, export it."""
    _, family, names, window, hidden, layers = MODELS[key]
    folder = root / key
    folder.mkdir()
    pd.read_csv(root / "bars.csv", index_col=0).iloc[:TRAIN_BARS].to_csv(folder / "bars.csv")
    study_file = folder / "study.toml"
    study_file.write_text(STUDY.format(key=key, window=window, names=list(names), family=family,
                                       hidden=hidden, layers=layers).replace("'", '"'))  # fmt: skip
    config = load_study_config(study_file)
    env = Settings()
    storage = resolve_storage(config, None, env)
    study, _ = create_study(config, storage, env, load_bars(folder / "bars.csv"))
    params: dict[str, object] = {"family": family}
    if family == "xlstm":
        params |= {"xlstm/slstm_0": False, "xlstm/slstm_1": True}
    enqueue(study, config, EnqueueEntry(key, params, tuple(names)))
    study = run_search(config, storage, env)
    bundle = folder / "bundle"
    export_bundle(config, pick_trial(study), bundle, env)
    return bundle


def _ms(seconds: list[float]) -> tuple[float, float]:
    return float(np.percentile(seconds, 50) * 1e3), float(np.percentile(seconds, 99) * 1e3)


def _timed(call: object, times: list[float]) -> None:
    t0 = time.perf_counter()
    call()  # type: ignore[operator]
    times.append(time.perf_counter() - t0)


def predictor_latency(bundle: Path, bars: Bars, n: int) -> tuple[float, float, int]:
    bot = Predictor(bundle)
    start = len(bars) - n
    bot.predict_last(bars.head(start))
    rows = [
        {"time": bars.index[k], **bars.frame.iloc[k].to_dict()} for k in range(start, len(bars))
    ]
    times: list[float] = []
    for row in rows:
        _timed(lambda row=row: bot.update(row), times)  # type: ignore[misc]
    return (*_ms(times), bot.history)


def batch_latency(bundle: Path, bars: Bars, n: int) -> float:
    loaded = load_bundle(bundle)
    times: list[float] = []
    for k in range(len(bars) - n, len(bars)):
        _timed(lambda k=k: predict(loaded, bars.head(k + 1), last=True), times)  # type: ignore[misc]
    return _ms(times)[0]


def cli_latency(bundle: Path, bars: Bars, n: int, root: Path) -> float:
    times: list[float] = []
    for k in range(len(bars) - n, len(bars)):
        path = root / f"history_{k}.csv"
        bars.frame.iloc[: k + 1].to_csv(path)
        command = [
            sys.executable,
            "-m",
            "xtune",
            "predict",
            str(bundle),
            "--data",
            str(path),
            "--last",
        ]
        _timed(lambda c=command: subprocess.run(c, check=True, capture_output=True), times)  # type: ignore[misc]
    return _ms(times)[0]


BOT = """
import resource, sys
import pandas as pd
from xtune.runtime import Predictor
bars = pd.read_csv(sys.argv[2], index_col=0, parse_dates=True)
bot = Predictor(sys.argv[1])
bot.predict_last(bars.iloc[:-{n}])
for t, bar in bars.iloc[-{n}:].iterrows():
    bot.update({{"time": t, **bar.to_dict()}})
assert "torch" not in sys.modules and "optuna" not in sys.modules
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bot_rss_mb(bundle: Path, csv: Path, n: int) -> float:
    """Peak RSS of a bot process. Started through a shell that forks it: Linux carries
    ru_maxrss across exec, so a child exec'd straight from this (large) process would report
    this process's peak instead of its own."""
    bot = [sys.executable, "-c", BOT.format(n=n), str(bundle), str(csv)]
    out = subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", *bot],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _row(label: str, bundle: Path, bars: Bars, csv: Path, args: argparse.Namespace,
         root: Path) -> str:  # fmt: skip
    """One table row, every figure measured now."""
    p50, p99, history = predictor_latency(bundle, bars, args.bars)
    batch = batch_latency(bundle, bars, args.batch_calls)
    cli = cli_latency(bundle, bars, args.cli_calls, root)
    rss = bot_rss_mb(bundle, csv, args.bars)
    m = load_bundle(bundle).manifest
    return (f"| {label} | {len(m.features)} | {m.window} | {history} | {p50:.1f} | {p99:.1f} "
            f"| {batch:.0f} | {cli:.0f} | {rss:.0f} | {m.model.file} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=500, help="bars fed to update()")
    parser.add_argument("--cli-calls", type=int, default=3)
    parser.add_argument("--batch-calls", type=int, default=10)
    parser.add_argument("--bundle", action="append", type=Path, default=[],
                        help="measure this exported bundle instead (repeatable); needs --data")  # fmt: skip
    parser.add_argument("--data", help="bars for --bundle: a file or sample:NAME")
    args = parser.parse_args()
    if args.bundle and not args.data:
        parser.error("--bundle needs --data (the bars to feed the bot)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["XTUNE_CACHE_DIR"] = str(root / "cache")  # leave the user's cache alone
        csv = root / "bars.csv"
        (load_bars(args.data).frame if args.bundle else synthetic_bars(N_BARS, seed=1)).to_csv(csv)
        bars = load_bars(csv)
        print(f"{len(bars)} bars of {args.data or 'synthetic hourly bars'}; {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}; one onnxruntime thread\n")  # fmt: skip
        rows = [_row(str(b), b, bars, csv, args, root) for b in args.bundle]
        for key, (label, *_) in ({} if args.bundle else MODELS).items():
            t0 = time.perf_counter()
            bundle = make_bundle(root, key)
            built = time.perf_counter() - t0
            rows.append(_row(label, bundle, bars, csv, args, root))
            print(f"  built and measured {label} in {time.perf_counter() - t0:.0f} s "
                  f"(bundle {built:.0f} s)", file=sys.stderr)  # fmt: skip
    print("| model | features | window | history (bars kept) | update() p50 ms | update() p99 ms "
          "| batch predict() p50 ms | CLI --last p50 ms | bot RSS MB | model file |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    print(f"\nupdate(): {args.bars} consecutive bars; batch predict(): {args.batch_calls} bars, each "
          f"on the full history so far (~{len(bars) - args.bars} bars); CLI: {args.cli_calls} "
          "calls, each a new process on a CSV of the full history.")  # fmt: skip


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
