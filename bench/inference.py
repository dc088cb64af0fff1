"""Inference on the trading PC: batch-1 latency on one thread, torch eager vs onnxruntime.

    python bench/inference.py

For LSTM 64x1, 128x2, 256x3 and an xLSTM (64 wide, [mLSTM, sLSTM]), at window 60 and 500:
median latency of one window (batch 1, one thread) in torch eager, onnxruntime fp32 and
onnxruntime int8 (dynamic quantization after constant folding), the model file sizes, and
the speedups over torch, all measured in this one run with random weights and inputs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from xtune.export import ort_latency_ms, quantize_int8
from xtune.models import LSTMConfig, XLSTMConfig, build_model, cpu_latency_ms, export_onnx

FEATURES = 40


def main() -> None:
    torch.manual_seed(0)
    models = {
        "LSTM 64x1": LSTMConfig(n_features=FEATURES, hidden=64, layers=1),
        "LSTM 128x2": LSTMConfig(n_features=FEATURES, hidden=128, layers=2),
        "LSTM 256x3": LSTMConfig(n_features=FEATURES, hidden=256, layers=3),
        "xLSTM 64 [m,s]": XLSTMConfig(
            n_features=FEATURES, embed=64, heads=4, blocks=2, slstm_at=(1,)
        ),
    }
    header = f"{'model':<15} {'window':>6} | {'torch ms':>8} {'ort fp32':>8} {'ort int8':>8} | {'fp32 KB':>8} {'int8 KB':>8} | fp32 / int8 vs torch"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in models.items():
            model = build_model(config).eval()
            for window in (60, 500):
                x = (
                    np.random.default_rng(0)
                    .standard_normal((1, window, FEATURES))
                    .astype(np.float32)
                )
                stem = f"{name.replace(' ', '_').replace('[', '').replace(']', '').replace(',', '')}_{window}"
                fp32 = export_onnx(model, window, FEATURES, Path(tmp) / f"{stem}.onnx")
                torch_ms = cpu_latency_ms(model, window, FEATURES, repeats=30)
                ort_ms = ort_latency_ms(fp32, x, repeats=30)
                try:
                    q = quantize_int8(fp32, fp32.with_name(fp32.stem + ".int8.onnx"))
                    q_ms = ort_latency_ms(q, x, repeats=30)
                    int8_ms, int8_kb = f"{q_ms:8.3f}", f"{q.stat().st_size / 1e3:8.0f}"
                    int8_x = f"{torch_ms / q_ms:5.1f}x"
                except Exception:  # the quantizer does not handle every graph
                    int8_ms, int8_kb, int8_x = f"{'n/a':>8}", f"{'n/a':>8}", "  n/a"
                size = fp32.stat().st_size / 1e3
                print(
                    f"{name:<15} {window:>6} | {torch_ms:8.3f} {ort_ms:8.3f} {int8_ms} | {size:8.0f} {int8_kb} | {torch_ms / ort_ms:5.1f}x / {int8_x}"
                )


if __name__ == "__main__":
    main()
