"""Latency on this CPU, measured the same way at export (research PC) and by ``xtune certify``
(trading PC), so that their ratio says how much slower one CPU is. Torch-free."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPEATS, WARMUP = 50, 5


@dataclass(frozen=True)
class Latency:
    """Per-call wall time in ms over ``calls`` timed calls (after a warm-up)."""

    p50: float
    p99: float
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = 1e3 * np.asarray(seconds, np.float64)
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(ms))


def timed(call: Callable[[], object], repeats: int = REPEATS, warmup: int = WARMUP) -> Latency:
    """Time ``call`` ``repeats`` times after ``warmup`` untimed calls."""
    seconds = []
    for k in range(warmup + repeats):
        start = time.perf_counter()
        call()
        if k >= warmup:
            seconds.append(time.perf_counter() - start)
    return Latency.of(seconds)


def ort_latency(
    model: Path | bytes, x: np.ndarray, input_name: str, repeats: int = REPEATS
) -> Latency:
    """Batch-1 latency of an ONNX model (a file or its bytes) in onnxruntime on one thread:
    the first window of ``x`` [N, L, F], as the live bot calls it."""
    from xtune.runtime.session import onnxruntime

    ort = onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    one = {input_name: np.ascontiguousarray(x[:1], np.float32)}
    return timed(lambda: session.run(None, one), repeats)
