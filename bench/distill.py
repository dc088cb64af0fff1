"""Does a distilled student keep its teacher's edge at a fraction of its latency?

Usage: python bench/distill.py [--bars 20000] [--trials 2] [--epochs 6] [--speedup 3]

On synthetic momentum bars (``sample:synthetic``'s generator, momentum 0.15, more bars than the
sample so the test part's noise is small), a two-trial study of a fixed LSTM 128x2 teacher
picks the trial ``xtune export`` would write; ``distill_bundle`` (what ``xtune distill`` runs)
then trains a student at least ``--speedup`` times faster (ONNX fp32, batch 1, one thread) on
its soft labels, and the same student once more on hard labels only (weight 0: the plain way).
On a random walk (momentum 0) the same study and distillation must both score chance. Every
edge is on the untouched test part, with its standard error. The process is pinned to one core
(one training thread, as on a shared machine); times are this process's CPU seconds.

Latency, ONNX fp32 at batch 1 on one thread as export times a bundle: the verdict takes the
report's, teacher and student timed together in interleaved rounds (export/student.py); the
student's single timing at export, minutes later, is shown beside it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from xtune.export import DistillReport, StudentCap, distill_bundle, pick_trial
from xtune.export.student import describe
from xtune.features.sample import synthetic_bars
from xtune.models import DistillConfig, width_depth
from xtune.search import load_study_config, resolve_storage, run_search
from xtune.settings import Settings

TARGET_KEPT, TARGET_SHARE = 0.9, 1 / 3

STUDY = """
[study]
name = "distill_{name}"
trials = {trials}
seed = 0
sampler = "random"
objectives = ["accuracy", "loss"]

[data]
source = "bars.csv"
window = 32

[labels]
horizons = [1]
classes = 2

[split]
val = 0.15
test = 0.15

[features]
groups = ["returns", "momentum"]
unit = "group"
min = 2

[model]
families = ["lstm"]

[model.lstm]
hidden = 128
layers = 2

[train]
epochs = {epochs}
patience = 3
batch_size = 256
lr = [1e-3, 5e-3]
weight_decay = [1e-4, 1e-2]
dropout = [0.0, 0.1]
return_weight = [0.0, 0.5]

[caps]
max_width = 128
max_depth = 2
max_params = 1000000
max_latency_ms = 50.0

[search]
early_stop = false
"""


@dataclass(frozen=True)
class Case:
    name: str
    momentum: float
    seed: int


CASES = (Case("momentum", 0.15, 7), Case("random_walk", 0.0, 11))


def _study(root: Path, case: Case, args: argparse.Namespace) -> Path:
    folder = root / case.name
    folder.mkdir()
    synthetic_bars(args.bars, seed=case.seed, momentum=case.momentum).to_csv(folder / "bars.csv")
    path = folder / "study.toml"
    path.write_text(STUDY.format(name=case.name, trials=args.trials, epochs=args.epochs))
    return path


def _run(path: Path, args: argparse.Namespace, weights: tuple[float, ...]) -> list[DistillReport]:
    env = Settings()
    config = load_study_config(path)
    study = run_search(config, resolve_storage(config, None, env), env)
    teacher = pick_trial(study)
    first = distill_bundle(config, teacher, path.parent / "student", env,
                           StudentCap(min_speedup=args.speedup), DistillConfig(weight=weights[0]))  # fmt: skip
    # The same student size again (not re-chosen under timing noise), trained another way.
    width, depth = width_depth(first.student.model)
    return [first] + [distill_bundle(config, teacher, path.parent / f"student_w{w:g}", env,
                                     StudentCap(width=width, depth=depth), DistillConfig(weight=w))
                      for w in weights[1:]]  # fmt: skip


def _row(case: str, who: str, r: DistillReport, student: bool) -> str:
    """One model's row: test scores, latency timed with the other model, and at export."""
    side = r.student if student else r.teacher
    s = side.test
    kept = f"{r.kept:.0%}" if student and r.kept is not None else "—"
    share = f"{1 / r.speedup:.3f}x" if student else "1"
    exported = f"{r.bundle.latency_ms['onnx_fp32']:.4f}" if student else "—"
    return (f"| {case} | {who} | {describe(side.model)} | {side.params:,} | {s.accuracy:.4f} | "
            f"{s.baseline:.4f} | {s.edge:+.4f} ± {r.noise:.4f} | {kept} | {side.latency_ms:.4f} | "
            f"{share} | {exported} |")  # fmt: skip


def _verdicts(momentum: DistillReport, walk: list[DistillReport]) -> list[str]:
    kept, share = momentum.kept, 1 / momentum.speedup
    met = kept is not None and kept >= TARGET_KEPT and share <= TARGET_SHARE
    out = [
        f"momentum: the distilled student kept {kept:.0%} of the teacher's test edge at "
        f"{share:.3f}x its latency; target >= {TARGET_KEPT:.0%} at <= {TARGET_SHARE:.3f}x: "
        + ("MET" if met else "NOT MET")
        if kept is not None
        else "momentum: the teacher has no test edge: target NOT MET"
    ]
    for r in walk:
        for who, s in (("teacher", r.teacher.test), ("student", r.student.test)):
            z = s.edge / r.noise
            verdict = "chance (within 2 SE)" if abs(z) <= 2 else "NOT chance"
            out.append(f"random walk {who}: edge {s.edge:+.4f} = {z:+.1f} SE: {verdict}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--speedup", type=float, default=3.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core: one thread
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows, reports, notes = [], {}, []
    with tempfile.TemporaryDirectory(prefix="xtune-bench-distill-") as tmp:
        for case in CASES:
            start = time.process_time()
            weights = (0.5, 0.0) if case.momentum else (0.5,)  # the plain way where there is edge
            runs = _run(_study(Path(tmp), case, args), args, weights)
            reports[case.name] = runs
            notes += [f"{case.name}, weight {w:g}: {line}" for w, r in zip(weights, runs, strict=True)
                      for line in r.warnings]  # fmt: skip
            rows.append(_row(case.name, "teacher (refit)", runs[0], False))
            for w, r in zip(weights, runs, strict=True):
                who = f"student, distilled (T 2, w {w:g})" if w else "student, hard labels only"
                rows.append(_row(case.name, who, r, True))
            print(f"{case.name}: {time.process_time() - start:.0f} CPU s", flush=True)
    print(f"\n{args.bars:,} bars per case, {args.trials} trials x {args.epochs} epochs; "
          f"student cap: {args.speedup:g}x faster than the teacher (ONNX fp32)\n")  # fmt: skip
    print("| bars | model | architecture | parameters | test accuracy | baseline | edge ± SE "
          "| edge kept | ONNX fp32 ms, timed together | latency vs teacher | ONNX fp32 ms at "
          "export |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    verdicts = _verdicts(reports["momentum"][0], reports["random_walk"])
    print("\n" + "\n".join(verdicts))
    print("".join(f"\nwarning: {line}" for line in notes))


if __name__ == "__main__":
    main()
