"""Resource probes for the search's cap: parameter count and single-window CPU latency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_latency_ms(
    model: nn.Module, window: int, n_features: int, *, repeats: int = 20, warmup: int = 3
) -> float:
    """Median wall time of one forward pass on one window (batch 1, 1 thread, CPU), in ms.

    This is how the live bot calls the model: one new bar, one window, on a weak CPU.
    """
    was_training = model.training
    device = next(model.parameters()).device
    model_cpu = model.to("cpu").eval()
    x = torch.randn(1, window, n_features)
    times = []
    with torch_threads(1), torch.inference_mode():
        for k in range(warmup + repeats):
            t0 = time.perf_counter()
            model_cpu(x)
            if k >= warmup:
                times.append(time.perf_counter() - t0)
    model.to(device).train(was_training)
    times.sort()
    return 1e3 * times[len(times) // 2]


@dataclass(frozen=True)
class Resources:
    """What a model costs on the trading PC, measured once per trial before any training."""

    params: int
    latency_ms: float  # one window, batch 1, one CPU thread


def probe(model: nn.Module, window: int, n_features: int) -> Resources:
    return Resources(count_params(model), cpu_latency_ms(model, window, n_features))
