"""The check for the first machine with an NVIDIA GPU: does xtune's GPU path work, and how many
workers per GPU pay? One command, under 8 minutes, one table.

    python bench/gpu_check.py [--seconds 50] [--workers 1,2,4,8] [--out gpu_check.md]

Rows:
- **step**: both families (the quickstart's largest LSTM and xLSTM) train on ``cuda:0`` in fp32
  and in bf16, through the worker's own device check, so a bf16 that fails falls back to fp32
  here as it would in a search (the row says so); median ms per training step.
- **search**: the quickstart study (``studies/quickstart.toml``, early stopping on) searched on
  GPU 0 for ``--seconds`` with 1, 2, 4 and 8 workers: trials per hour as the budget counts
  them, GPU busy % (NVML utilization, sampled every 0.5 s) and the largest memory a worker
  held (NVML, per process).
- **parity**: an LSTM trained on the GPU, exported to ONNX and run by onnxruntime on the CPU,
  against torch on the CPU: the largest absolute difference (the bundle's 1e-4 bar).

Without CUDA it prints one line and exits 0. Needs ``nvidia-ml-py`` for the NVML columns
(``pip install nvidia-ml-py``); without it those columns read "n/a".
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "studies" / "quickstart.toml"


@dataclass(frozen=True)
class Row:
    check: str
    setting: str
    result: str
    detail: str = ""


def render(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table (what the benchmarks page takes as it is)."""
    head = ("check", "setting", "result", "detail")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [f"| {r.check} | {r.setting} | {r.result} | {r.detail} |" for r in rows]
    return "\n".join(lines)


@dataclass
class Samples:
    """What NVML showed during one run: GPU busy % per sample, and each process's memory."""

    busy: list[float] = field(default_factory=list)
    memory_mb: dict[int, float] = field(default_factory=dict)  # pid -> the most it held

    def add(self, busy: float, processes: Sequence[tuple[int, float]]) -> None:
        self.busy.append(busy)
        for pid, mb in processes:
            self.memory_mb[pid] = max(mb, self.memory_mb.get(pid, 0.0))

    def busy_text(self) -> str:
        if not self.busy:
            return "n/a"
        return f"{statistics.fmean(self.busy):.0f}% mean, {max(self.busy):.0f}% max"

    def memory_text(self) -> str:
        if not self.memory_mb:
            return "n/a"
        return f"{max(self.memory_mb.values()):.0f} MB max per worker"


class Sampler:
    """Samples one GPU through an NVML module (``pynvml``, or a stand-in with the same four
    calls) on a thread, every ``interval`` seconds, until stopped."""

    def __init__(self, nvml: Any, index: int = 0, interval: float = 0.5) -> None:
        self.nvml, self.index, self.interval = nvml, index, interval
        self.samples = Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        handle = self.nvml.nvmlDeviceGetHandleByIndex(self.index)
        busy = float(self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        used = [(p.pid, (p.usedGpuMemory or 0) / 2**20) for p in procs]
        self.samples.add(busy, used)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class _NoSampler:
    samples = Samples()

    def __enter__(self) -> _NoSampler:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def trials_per_hour(spent: float, seconds: float) -> float:
    return 3600.0 * spent / seconds if seconds > 0 else 0.0


def _nvml() -> Any | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # not installed, or no driver library
        return None


def step_rows(device: str = "cuda:0") -> list[Row]:
    """Both families in fp32 and bf16 through the worker's own device check."""
    import torch

    from xtune.models import LSTMConfig, XLSTMConfig, build_model
    from xtune.search.device import check_device

    rows = []
    for bf16 in (False, True):
        record = check_device(device, bf16=bf16)
        fell = bf16 and record.precision == "fp32"
        for name, cfg in (
            ("LSTM 48x2", LSTMConfig(n_features=12, hidden=48, layers=2)),
            ("xLSTM 32x2", XLSTMConfig(n_features=12, embed=32, heads=2, blocks=2, slstm_at=(1,))),
        ):
            model = build_model(cfg).to(device)
            opt = torch.optim.AdamW(model.parameters())
            x = torch.randn(256, 48, 12, device=device)  # [B, L, F]
            times = []
            for _ in range(25):
                t0 = time.perf_counter()
                with torch.autocast(
                    "cuda", dtype=torch.bfloat16, enabled=record.precision == "bf16"
                ):
                    logits, ret = model(x)
                loss = logits.float().logsumexp(-1).mean() + ret.float().pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                torch.cuda.synchronize(device)
                times.append(time.perf_counter() - t0)
            asked = "bf16" if bf16 else "fp32"
            note = "bf16 failed here: fell back to fp32" if fell else f"ran in {record.precision}"
            rows.append(
                Row(
                    "step", f"{name}, {asked}", f"{1e3 * statistics.median(times[5:]):.2f} ms", note
                )
            )
    return rows


def search_row(workers: int, seconds: float, folder: Path, nvml: Any | None) -> Row:
    """The quickstart searched on GPU 0 by ``workers`` workers for ``seconds``."""
    import optuna

    from xtune.search.budget import spent

    journal = folder / f"gpu_{workers}.journal"
    cmd = [sys.executable, "-m", "xtune", "search", str(QUICKSTART), "--storage", str(journal),
           "--device", "cuda:0", "--workers", str(workers), "--n-trials", "100000",
           "--timeout", str(seconds)]  # fmt: skip
    sampler = Sampler(nvml) if nvml is not None else _NoSampler()
    t0 = time.perf_counter()
    with sampler:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return Row("search", f"{workers} worker(s)", "FAILED", done.stderr.strip().splitlines()[-1])
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.load_study(study_name="quickstart", storage=storage)
    rate = trials_per_hour(spent(study), wall)
    s = sampler.samples
    return Row("search", f"{workers} worker(s), {seconds:.0f} s", f"{rate:.0f} trials/h",
               f"GPU busy {s.busy_text()}; {s.memory_text()}")  # fmt: skip


def parity_row(folder: Path) -> Row:
    """An LSTM trained on the GPU, run on the CPU by onnxruntime and by torch."""
    from xtune.features import DataSpec, load_bars, prepare
    from xtune.features.sample import synthetic_bars
    from xtune.models import LSTMConfig, Params, TrainConfig, export_onnx, onnx_parity, train

    features = ("ret_1", "ret_3", "rsi_14", "bb_pct")
    data = prepare(load_bars(synthetic_bars(3000, seed=1)), DataSpec(features=features, window=32))
    params = Params(LSTMConfig(n_features=4, hidden=32, layers=2), TrainConfig(epochs=3))
    fit = train(params, data, device="cuda:0")
    path = export_onnx(fit.model, 32, 4, folder / "gpu_trained.onnx")
    diff = onnx_parity(fit.model, path, data.val(0).x[:256])
    verdict = "pass" if diff <= 1e-4 else "FAIL"
    return Row(
        "parity",
        "LSTM 32x2 trained on cuda:0",
        verdict,
        f"max |onnxruntime - torch| {diff:.2e} on CPU",
    )


def run_checks(seconds: float, workers: Sequence[int], log: Callable[[str], None]) -> list[Row]:
    nvml = _nvml()
    rows = step_rows()
    log(render(rows))
    with tempfile.TemporaryDirectory() as tmp:
        for k in workers:
            rows.append(search_row(k, seconds, Path(tmp), nvml))
            log(render(rows[-1:]))
        rows.append(parity_row(Path(tmp)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=50.0, help="search time per worker count")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, comma separated")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(
            f"gpu_check: no CUDA GPU here (torch {torch.__version__}, {build}); nothing to check."
        )
        return 0
    counts = [int(k) for k in args.workers.split(",")]
    rows = run_checks(args.seconds, counts, lambda text: print(text, file=sys.stderr))
    table = f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}\n\n{render(rows)}"
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0 if all(r.result not in ("FAIL", "FAILED") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
