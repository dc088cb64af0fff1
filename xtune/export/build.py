"""Export: refit the chosen trial on train + validation, test it once, write a verified bundle."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from xtune.export.pick import ExportError
from xtune.features import load_bars
from xtune.features.build import feature_specs
from xtune.features.catalog import warmup_of
from xtune.models import cpu_latency_ms, export_onnx, fit_final, onnx_parity
from xtune.runtime.bundle import FORMAT, FORMAT_VERSION, MANIFEST, write_sums
from xtune.search.config import StudyConfig
from xtune.search.replay import trial_inputs

PARITY_TOL = 1e-4
INT8_MIN_AGREEMENT = 0.99


def ort_latency_ms(path: Path, x: np.ndarray, repeats: int = 50) -> float:
    """Median batch-1 latency of an ONNX model in onnxruntime on one thread, in ms."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    one = np.ascontiguousarray(x[:1], np.float32)
    times = []
    for k in range(repeats + 5):
        start = time.perf_counter()
        session.run(None, {"x": one})
        if k >= 5:
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _directions(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(["logits"], {"x": np.ascontiguousarray(x[k : k + 2048])})[0]
                             for k in range(0, len(x), 2048)])  # fmt: skip
    return logits.argmax(-1)  # type: ignore[no-any-return]


def _versions() -> dict[str, str]:
    out = {}
    for name in (
        "xtune",
        "torch",
        "onnx",
        "onnxruntime",
        "optuna",
        "numpy",
        "pandas",
        "ta",
        "ta-lib",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    trial: int
    validation: dict[str, float]
    test: dict[str, float]
    parity: float
    int8: dict[str, Any]
    latency_ms: dict[str, float | None]


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


def _try_int8(
    fp32: Path, folder: Path, test_x: np.ndarray, fp32_ms: float
) -> tuple[dict[str, Any], float | None]:
    """Quantize; keep the int8 file only if it is faster here and agrees with fp32 on at
    least 99% of test directions."""
    path = folder / "model.int8.onnx"
    try:
        quantize_int8(fp32, path)
    except Exception as exc:  # an op the quantizer cannot handle: fp32 it is
        path.unlink(missing_ok=True)
        return {
            "used": False,
            "reason": f"quantization failed: {type(exc).__name__}: {str(exc)[:200]}",
        }, None
    ms = ort_latency_ms(path, test_x)
    agreement = float((_directions(path, test_x) == _directions(fp32, test_x)).mean())
    faster = ms < fp32_ms
    keep = faster and agreement >= INT8_MIN_AGREEMENT
    info: dict[str, Any] = {
        "used": keep,
        "agreement": agreement,
        "latency_ms": ms,
        "speedup": fp32_ms / ms,
    }
    if not keep:
        path.unlink()
        info["reason"] = "; ".join(
            ([] if faster else [f"not faster ({ms:.3f} ms vs fp32 {fp32_ms:.3f} ms)"])
            + (
                []
                if agreement >= INT8_MIN_AGREEMENT
                else [f"agrees on only {agreement:.2%} of test directions"]
            )
        )
    return info, ms if keep else None


def export_bundle(
    config: StudyConfig,
    trial: FrozenTrial,
    out: Path,
    *,
    data: str | None = None,
    allow_other_data: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
) -> ExportReport:
    """Refit ``trial`` on train + validation (its early-stopped epoch count, its seed), evaluate
    once on the test part, and write the bundle to ``out`` (atomically: all or nothing)."""
    attrs = trial.user_attrs
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(
            f"{out} exists and is not empty; pass --overwrite or choose another --out."
        )
    bars = load_bars(data or attrs["data/source"])
    same = bars.sha256 == attrs["data/sha256"]
    if not same and not allow_other_data:
        raise ExportError(
            f"{bars.source}: not the bars trial {trial.number} was searched on (sha256 "
            f"{bars.sha256[:12]} vs {attrs['data/sha256'][:12]}). Pass the original file with "
            "--data, or --allow-other-data to refit on these bars on purpose."
        )
    plan, params, dataset = trial_inputs(attrs, bars)
    model, test, ret_scale, fold = fit_final(
        params, dataset, int(attrs["train/best_epoch"]), device=device, fee=config.trading.fee
    )
    if test.status != "ok":
        raise ExportError(f"the refit of trial {trial.number} diverged: {test.reason}")
    test_x = np.ascontiguousarray(dataset.part(fold, dataset.split.test).x)
    names = plan.data.features
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        folder = Path(tmp)
        fp32 = export_onnx(model, plan.data.window, len(names), folder / "model.onnx")
        parity = onnx_parity(model, fp32, test_x[:1024])
        if not parity <= PARITY_TOL:
            raise ExportError(
                f"ONNX parity check failed: onnxruntime differs from torch by {parity:.3g} "
                f"(> {PARITY_TOL}) on test windows. Nothing was written."
            )
        fp32_ms = ort_latency_ms(fp32, test_x)
        int8, int8_ms = _try_int8(fp32, folder, test_x, fp32_ms)
        torch_ms = cpu_latency_ms(model, plan.data.window, len(names))
        validation = {
            "accuracy": attrs["metrics/val_accuracy"],
            "loss": attrs["metrics/val_loss"],
            "baseline_accuracy": attrs["metrics/baseline_accuracy"],
            "sharpe": attrs.get("metrics/val_sharpe"),
        }
        test_metrics = {
            "accuracy": test.val_accuracy,
            "loss": test.val_loss,
            "baseline_accuracy": test.baseline_accuracy,
            "sharpe": test.val_sharpe,
            "samples": len(dataset.split.test),
        }
        latency = {"torch_eager": torch_ms, "onnx_fp32": fp32_ms, "onnx_int8": int8_ms}
        labels = plan.data.labels
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": datetime.now(UTC).isoformat(),
            "model": {
                "file": "model.int8.onnx" if int8["used"] else "model.onnx",
                "fp32": "model.onnx",
                "family": plan.params.model.family,
                "input": ["batch", plan.data.window, len(names)],
            },
            "features": feature_specs(names),
            "warmup": warmup_of(names),
            "scaler": fold.scaler.to_dict(),
            "window": plan.data.window,
            "horizons": list(labels.horizons),
            "classes": labels.classes,
            "class_names": list(labels.class_names),
            "dead_zone": labels.dead_zone,
            "return_scale": [float(v) for v in ret_scale],
            "data": {
                "sha256": bars.sha256,
                "source": bars.source,
                "rows": len(bars),
                "span": [str(bars.index[0]), str(bars.index[-1])],
                "searched_on_same_bars": same,
            },
            "study": {
                "name": config.study.name,
                "trial": trial.number,
                "params": trial.params,
                "plan": json.loads(attrs["plan/json"]),
                "epochs": test.epochs_run,
            },
            "metrics": {"validation": validation, "test": test_metrics},
            "latency_ms": latency,
            "int8": int8,
            "parity_max_abs_diff": parity,
            "versions": _versions(),
        }
        files = sorted(p.name for p in folder.iterdir())
        from xtune.runtime.bundle import sha256_file

        manifest["files"] = {name: sha256_file(folder / name) for name in files}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        write_sums(folder, [*files, MANIFEST])
        if out.exists():
            shutil.rmtree(out)
        Path(tmp).rename(out)
        out.chmod(0o755)  # TemporaryDirectory made it private
        Path(tmp).mkdir()  # the context manager removes it again
    return ExportReport(out, trial.number, validation, test_metrics, parity, int8, latency)


def open_study(config: StudyConfig, storage_url: str) -> optuna.Study:
    from xtune.search.storage import mask, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=config.study.name, storage=open_storage(storage_url))
    except KeyError:
        raise ExportError(
            f"no study '{config.study.name}' in {mask(storage_url)}; run `xtune search` first."
        ) from None
