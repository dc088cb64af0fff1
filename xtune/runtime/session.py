"""One onnxruntime session on a bundle's model, checked against its manifest, and the batched
call that turns windows into class probabilities and returns. Torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xtune.errors import BundleError
from xtune.runtime.bundle import Bundle

RUNTIME_EXTRA = (
    "this install has no onnxruntime: install xtune with its runtime extra, "
    'pip install "xtune-<version>-py3-none-any.whl[runtime]" or, in a clone, pip install ".[runtime]"'
)


def onnxruntime() -> Any:
    """The onnxruntime module, or a one-line error naming the extra that brings it.

    Raises:
        BundleError: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise BundleError(RUNTIME_EXTRA) from None
    return ort


def open_session(
    bundle: Bundle, model: Path | None = None, threads: int = 1, *, fp32: bool = False
) -> Any:
    """An onnxruntime session on ``threads`` threads, checked against the manifest's tensor
    names and input shape (a model file from another bundle is refused here, not
    mid-prediction). The bundle's model (int8 when export kept it), its fp32 model if
    ``fp32``, or another ``model`` file."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    name = bundle.manifest.model.fp32 if fp32 else bundle.manifest.model.file
    path = model or bundle.folder / name
    source = str(model) if model is not None else bundle.read(name)  # the verified bytes
    try:
        session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, untyped errors
        raise BundleError(
            f"{path}: onnxruntime cannot load it ({str(exc)[:200]}). Export again."
        ) from None
    m = bundle.manifest.model
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    want = [bundle.window, len(bundle.features)]
    if (
        m.input not in inputs
        or list(inputs[m.input][1:]) != want
        or not {m.logits, m.returns} <= outputs
    ):
        raise BundleError(
            f"{path}: the model takes {inputs} and gives {sorted(outputs)}, but the manifest "
            f"expects {m.input} [batch, {want[0]}, {want[1]}] -> {m.logits}, {m.returns}: the "
            "model does not belong to this bundle. Export again."
        )
    return session


def run_model(
    bundle: Bundle, session: Any, w: np.ndarray, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities [N, H, C] and predicted forward log returns [N, H] of windows
    ``w`` [N, L, F], ``step`` windows per onnxruntime call."""
    m = bundle.manifest
    logits, returns = [], []
    for k in range(0, len(w), step):
        batch = {m.model.input: np.ascontiguousarray(w[k : k + step])}
        lo, ret = session.run([m.model.logits, m.model.returns], batch)
        logits.append(lo)
        returns.append(ret)
    lg = np.concatenate(logits)  # [N, H, C]
    rt = np.concatenate(returns) * np.asarray(m.return_scale, np.float32)  # [N, H]
    probs = np.exp(lg - lg.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return probs, rt
