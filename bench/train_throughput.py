"""Training throughput: xtune's loop against the plain way, same model, same data, one run.

    python bench/train_throughput.py [--epochs 2] [--window 60] [--device cpu|cuda]

The plain way: a Python list of window tensors, TensorDataset + DataLoader(batch_size=32,
shuffle=True), torch's default threads, the same loss and optimizer. xtune's way: the fold
lives on the device as one tensor, batches of 256 are gathered there by index (validation each
epoch included in its time). Prints windows/second for each and the ratio, for LSTM 128x2,
and xtune's rate for an xLSTM. On CUDA it also samples GPU utilization with nvidia-smi.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from xtune.features import DataSpec, load_bars, prepare
from xtune.features.sample import synthetic_bars
from xtune.models import LSTMConfig, Params, TrainConfig, XLSTMConfig, build_model, train
from xtune.models.loss import LossConfig, total_loss


def plain_windows_per_second(
    model_config: LSTMConfig | XLSTMConfig, data, epochs: int, device: str
) -> float:  # type: ignore[no-untyped-def]
    fold, window = data.folds[0], data.spec.window
    torch.manual_seed(0)
    windows = [torch.from_numpy(fold.x[t - window + 1 : t + 1].copy()) for t in fold.train]
    y = torch.from_numpy(data.direction[fold.train.start : fold.train.stop])
    ret = data.returns[fold.train.start : fold.train.stop]
    r = torch.from_numpy((ret / ret.std(axis=0)).astype(np.float32))
    loader = DataLoader(TensorDataset(torch.stack(windows), y, r), batch_size=32, shuffle=True)
    model = build_model(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    loss_config = LossConfig()
    seen = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb, rb in loader:
            xb, yb, rb = xb.to(device), yb.to(device), rb.to(device)
            logits, pred = model(xb)
            loss = total_loss(logits, pred, yb, rb, loss_config)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            seen += len(xb)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


class GpuSampler:
    """Mean GPU utilization (nvidia-smi, every 0.2 s) while a block runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))
            time.sleep(0.2)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else float("nan")


def compute_ceiling(
    model_config: LSTMConfig | XLSTMConfig, window: int, n: int, device: str
) -> float:
    """Windows/s of bare forward + backward + step on one resident batch: no input pipeline
    at all. No training loop can beat this with the same model; it bounds the ratio."""
    torch.manual_seed(0)
    model = build_model(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    best = 0.0
    for batch in (32, 256):
        x = torch.randn(batch, window, n, device=device)
        y = torch.randint(0, 2, (batch, 1), device=device)
        r = torch.randn(batch, 1, device=device)
        for _ in range(2):  # the first round warms up
            seen, start = 0, time.perf_counter()
            while time.perf_counter() - start < 1.5:
                logits, pred = model(x)
                loss = total_loss(logits, pred, y, r, LossConfig())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                seen += batch
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            rate = seen / (time.perf_counter() - start)
        best = max(best, rate)
    return best


def xtune_windows_per_second(params: Params, data, device: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    use_gpu = device.startswith("cuda") and shutil.which("nvidia-smi") is not None
    sampler = GpuSampler() if use_gpu else None
    if sampler:
        sampler.__enter__()
    log = train(params, data, device=device).metrics.log
    if sampler:
        sampler.__exit__()
    rate = log.epochs_run * len(data.folds[0].train) / log.seconds
    return rate, sampler.mean if sampler else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--bars", type=int, default=12_000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    data = prepare(
        load_bars(synthetic_bars(args.bars)), DataSpec(window=args.window), use_cache=False
    )
    n = len(data.features)
    print(f"{len(data.folds[0].train):,} training windows of {args.window} x {n} features, "
          f"{args.epochs} epoch(s), device {args.device}, torch threads {torch.get_num_threads()}")  # fmt: skip
    lstm = LSTMConfig(n_features=n, hidden=128, layers=2, layernorm=False)
    no_stop = TrainConfig(epochs=args.epochs, patience=args.epochs + 1)
    plain = plain_windows_per_second(lstm, data, args.epochs, args.device)
    ours, util = xtune_windows_per_second(Params(lstm, no_stop), data, args.device)
    ceiling = compute_ceiling(lstm, args.window, n, args.device)
    print(f"LSTM 128x2  plain DataLoader(32): {plain:10,.0f} windows/s")
    print(f"LSTM 128x2  xtune loop:           {ours:10,.0f} windows/s   ratio {ours / plain:.1f}x"
          + (f"   GPU busy {util:.0f}%" if util == util else ""))  # fmt: skip
    print(
        f"LSTM 128x2  compute ceiling:      {ceiling:10,.0f} windows/s   (bare fwd+bwd on a "
        f"resident batch; best possible ratio here {ceiling / plain:.1f}x)"
    )
    xl = XLSTMConfig(n_features=n, embed=64, heads=4, blocks=2, slstm_at=(1,))
    plain_x = plain_windows_per_second(xl, data, 1, args.device)
    ours_x, util_x = xtune_windows_per_second(Params(xl, TrainConfig(epochs=1)), data, args.device)
    print(f"xLSTM 64x2 [m,s] plain DataLoader(32): {plain_x:7,.0f} windows/s")
    print(f"xLSTM 64x2 [m,s] xtune loop:           {ours_x:7,.0f} windows/s   ratio {ours_x / plain_x:.1f}x"
          + (f"   GPU busy {util_x:.0f}%" if util_x == util_x else ""))  # fmt: skip


if __name__ == "__main__":
    main()
