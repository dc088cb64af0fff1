"""ONNX export with a dynamic batch, and a parity check against torch in onnxruntime."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

INPUT, OUTPUTS = "x", ("logits", "returns")


def export_onnx(model: nn.Module, window: int, n_features: int, path: Path) -> Path:
    """Write ``model`` as ONNX: input ``x`` [batch, window, n_features] float32, outputs
    ``logits`` [batch, H, C] and ``returns`` [batch, H]. The window is fixed, the batch dynamic.
    """
    model = model.to("cpu").eval()
    example = torch.zeros(2, window, n_features)
    batch = torch.export.Dim("batch", min=1, max=65536)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The exporter narrates every stage and warns about internals we cannot act on.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            dynamic_shapes={"x": {0: batch}},
            input_names=[INPUT],
            output_names=list(OUTPUTS),
            verbose=False,
        )
    assert program is not None
    program.save(str(path))
    return path


def onnx_parity(model: nn.Module, path: Path, x: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on windows ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUTS), {INPUT: np.ascontiguousarray(x, np.float32)})
    model = model.to("cpu").eval()
    with torch.no_grad():
        want = model(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
    return max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))


def torch_probabilities(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Torch's class probabilities [N, H, C] for windows ``x`` [N, L, F], on the CPU: what
    onnxruntime must reproduce on the trading PC (stored in the bundle for ``xtune certify``)."""
    model = model.to("cpu").eval()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(np.ascontiguousarray(x, np.float32)))  # [N, H, C]
        return torch.softmax(logits, dim=-1).numpy()
