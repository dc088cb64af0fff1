"""ONNX on the CPU: batch-1 latency, and int8 kept only where it is faster and agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xtune.models.onnx_export import INPUT
from xtune.runtime.manifest import Int8Entry, ModelEntry
from xtune.runtime.reference import INT8_MIN_AGREEMENT
from xtune.runtime.timing import ort_latency


def ort_latency_ms(path: Path, x: np.ndarray, input_name: str = INPUT, repeats: int = 50) -> float:
    """Median batch-1 latency of an ONNX model in onnxruntime on one thread, in ms (measured
    as ``xtune certify`` measures it on the trading PC)."""
    return ort_latency(path, x, input_name, repeats).p50


def _directions(path: Path, x: np.ndarray, names: ModelEntry, step: int = 2048) -> np.ndarray:
    """Predicted classes [N, H]; ``step`` 1 for int8, as predict runs it (batch-dependent
    activation ranges would otherwise make a bar's answer depend on its neighbours)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = np.concatenate(
        [
            session.run([names.logits], {names.input: np.ascontiguousarray(x[k : k + step])})[0]
            for k in range(0, len(x), step)
        ]
    )
    return logits.argmax(-1)  # type: ignore[no-any-return]


def quantize_int8(fp32: Path, out: Path) -> Path:
    """Dynamic int8 quantization that reaches the LSTM weights.

    The exporter feeds each ``LSTM`` op its weights through Slice/Concat nodes (torch's gate
    order differs from ONNX's), which the quantizer cannot see through. Folding constants
    offline first turns them into initializers, so LSTMs become ``DynamicQuantizeLSTM``
    (3.5x faster than torch for LSTM 128x2 here). Stale example-batch shapes are dropped too.
    """
    import logging

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded = out.with_name(out.stem + ".folded.onnx")
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
        proto = onnx.load(str(folded))
        del proto.graph.value_info[:]
        onnx.save(proto, str(folded))
        logging.disable(logging.WARNING)  # the quantizer advises pre-processing on the root logger
        try:
            quantize_dynamic(str(folded), str(out), weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
    finally:
        folded.unlink(missing_ok=True)
    return out


def try_int8(
    fp32: Path, folder: Path, test_x: np.ndarray, fp32_ms: float, names: ModelEntry, sample: int
) -> Int8Entry:
    """Quantize; keep ``model.int8.onnx`` only if it is faster here and agrees with fp32 on at
    least 99% of test directions, and of the last ``sample`` test windows' (those the bundle
    stores, which ``xtune certify`` re-checks on the trading PC)."""
    path = folder / "model.int8.onnx"
    try:
        quantize_int8(fp32, path)
    except Exception as exc:  # an op the quantizer cannot handle: fp32 it is
        path.unlink(missing_ok=True)
        return Int8Entry(False, f"quantization failed: {type(exc).__name__}: {str(exc)[:200]}")
    ms = ort_latency_ms(path, test_x, names.input)
    same = _directions(path, test_x, names, step=1) == _directions(fp32, test_x, names)  # [N, H]
    agreement, on_sample = float(same.mean()), float(same[-sample:].mean())
    reasons = [] if ms < fp32_ms else [f"not faster ({ms:.3f} ms vs fp32 {fp32_ms:.3f} ms)"]
    if agreement < INT8_MIN_AGREEMENT:
        reasons.append(f"agrees on only {agreement:.2%} of test directions")
    elif on_sample < INT8_MIN_AGREEMENT:
        reasons.append(f"agrees on only {on_sample:.2%} of the {sample} stored test windows")
    if reasons:
        path.unlink()
    return Int8Entry(not reasons, "; ".join(reasons), agreement, ms, fp32_ms / ms, on_sample)
