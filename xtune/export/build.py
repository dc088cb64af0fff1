"""Export: refit the chosen trial on train + validation, test it once, write a verified bundle.

Two steps, so that ``xtune distill`` writes its student through the very same code:
:func:`refit_trial` (the trial's refit, scored once on the test part) and :func:`write_bundle`
(ONNX, parity, int8, reference sample, manifest and checksums, swapped in atomically).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import cast

import numpy as np
from optuna.trial import FrozenTrial

from xtune.errors import ExportError
from xtune.export.quantize import ort_latency_ms, try_int8
from xtune.export.replace import check_target, install
from xtune.features import Bars, Dataset, load_bars, summarize
from xtune.features._audit import preflight
from xtune.features.build import feature_specs
from xtune.models import (
    FinalFit,
    Params,
    Scores,
    cpu_latency_ms,
    export_onnx,
    fit_final,
    onnx_parity,
    torch_probabilities,
)
from xtune.models.onnx_export import INPUT, OUTPUTS
from xtune.outputs import as_inputs
from xtune.runtime.bundle import MANIFEST, sha256_file, write_sums
from xtune.runtime.feed import largest_move
from xtune.runtime.manifest import (
    CapsEntry,
    DataEntry,
    FeatureEntry,
    Int8Entry,
    Manifest,
    ModelEntry,
    PluginEntry,
    ReferenceEntry,
    StudyEntry,
    TeacherEntry,
)
from xtune.runtime.own_features import write_plugins
from xtune.runtime.reference import LATENCY_BARS, PARITY_TOL, WINDOWS, write_reference
from xtune.search._replay import check_plugins, trial_inputs
from xtune.search.config import StudyConfig
from xtune.search.record import Plan, TrialRecord, read
from xtune.search.states import is_trained, same_bars
from xtune.settings import Settings

PACKAGES = ("xtune", "torch", "onnx", "onnxruntime", "optuna", "numpy", "pandas", "ta", "ta-lib")


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    trial: int
    validation: Scores | None  # None: a distilled student, which trained on validation
    test: Scores
    parity: float
    int8: Int8Entry
    latency_ms: dict[str, float | None]


# The Scores a manifest records, under their manifest names, in the manifest's order.
MANIFEST_SCORES = {
    "accuracy": "accuracy",
    "loss": "loss",
    "baseline": "baseline_accuracy",
    "edge": "edge",
    "balanced_accuracy": "balanced_accuracy",
    "confident_accuracy": "confident_accuracy",
    "coverage": "coverage",
    "sharpe": "sharpe",
    "max_drawdown": "max_drawdown",
    "calmar": "calmar",
    "samples": "samples",
}


def scores_entry(s: Scores) -> dict[str, float | None]:
    """Scores as the manifest records them."""
    figures = s.to_dict()  # the names picked are numbers (per_horizon, the list, is not one)
    return {entry: cast(float, figures[name]) for name, entry in MANIFEST_SCORES.items()}


@dataclass(frozen=True)
class Refit:
    """What a bundle is written from: the trial, its record and plan, the bars and dataset, the
    refit, and what the manifest says of it (a distilled student replaces the model's part)."""

    config: StudyConfig
    trial: FrozenTrial
    record: TrialRecord
    plan: Plan  # what the bundle's model is: data spec, model, training settings
    params: Params  # what it trained with (the plan's, at the trial's recorded thread count)
    bars: Bars
    dataset: Dataset
    final: FinalFit
    test_x: np.ndarray  # [N, L, F] test windows, scaled as the bundle will scale them
    test_span: tuple[str, str]  # times of the first and last test sample
    validation: Scores | None  # the trial's validation scores; None: not validated (a student)
    caps: CapsEntry
    teacher: TeacherEntry | None = None


def _manifest(
    r: Refit,
    names: ModelEntry,
    files: dict[str, str],
    report: ExportReport,
    reference: ReferenceEntry,
    plugins: tuple[PluginEntry, ...],
) -> Manifest:
    spec, labels, bars = r.plan.data, r.plan.data.labels, r.bars
    feature_set = r.config.features.feature_set
    assert r.record.data is not None
    metrics = {"validation": report.validation, "test": report.test}
    return Manifest(
        model=names,
        features=tuple(FeatureEntry(**f) for f in feature_specs(spec.features, feature_set)),
        warmup=feature_set.warmup_of(spec.features),
        scaler=r.final.fold.scaler.to_dict(),
        window=spec.window,
        horizons=labels.horizons,
        classes=labels.classes,
        class_names=labels.class_names,
        dead_zone=labels.dead_zone,
        return_scale=tuple(float(v) for v in r.final.ret_scale),
        data=DataEntry(
            bars.sha256,
            bars.source,
            len(bars),
            (str(bars.index[0]), str(bars.index[-1])),
            same_bars(r.record.data, bars),
            summarize(bars).interval.total_seconds(),
            r.test_span,
            largest_move(bars.frame["close"].to_numpy()),
        ),
        study=StudyEntry(
            r.config.study.name,
            r.trial.number,
            dict(r.trial.params),
            json.loads(r.plan.to_json()),
            r.final.log.epochs_run,
        ),
        metrics={k: scores_entry(v) for k, v in metrics.items() if v is not None},
        latency_ms=report.latency_ms,
        int8=report.int8,
        parity_max_abs_diff=report.parity,
        versions=_versions(),
        files=files,
        created=datetime.now(UTC).isoformat(),
        history=feature_set.history_of(spec.features) + spec.window,
        reference=reference,
        caps=r.caps,
        fee=r.config.trading.fee,
        plugins=plugins,
        columns=feature_set.columns_of(spec.features),
        teacher=r.teacher,
    )


def _write(r: Refit, folder: Path) -> ExportReport:
    """ONNX, parity, int8, latencies, manifest and checksums into ``folder``."""
    model, window, n = r.final.model, r.plan.data.window, len(r.plan.data.features)
    feature_set = r.config.features.feature_set
    fp32 = export_onnx(model, window, n, folder / "model.onnx")
    parity = onnx_parity(model, fp32, r.test_x[:1024])
    if not parity <= PARITY_TOL:
        raise ExportError(
            f"ONNX parity check failed: onnxruntime differs from torch by {parity:.3g} "
            f"(> {PARITY_TOL}) on test windows. Nothing was written."
        )
    names = ModelEntry("model.onnx", "model.onnx", r.plan.params.model.family, INPUT, *OUTPUTS)
    fp32_ms = ort_latency_ms(fp32, r.test_x, names.input)
    sample = r.test_x[-WINDOWS:]  # the last test windows, re-checked on the trading PC
    history = feature_set.history_of(r.plan.data.features)
    tail = r.bars.frame.iloc[-(history + window + LATENCY_BARS) :]
    reference = write_reference(folder, sample, torch_probabilities(model, sample), tail)
    int8 = try_int8(fp32, folder, r.test_x, fp32_ms, names, len(sample))
    if int8.used:
        names = ModelEntry("model.int8.onnx", "model.onnx", names.family, INPUT, *OUTPUTS)
    latency = {
        "torch_eager": cpu_latency_ms(model, window, n),
        "onnx_fp32": fp32_ms,
        "onnx_int8": int8.latency_ms if int8.used else None,
    }
    report = ExportReport(folder, r.trial.number, r.validation, r.final.test, parity, int8, latency)
    plugins = write_plugins(folder, r.plan.data.features, feature_set)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())}
    manifest = _manifest(r, names, files, report, reference, plugins)
    (folder / MANIFEST).write_text(manifest.to_json())
    write_sums(folder, [*files, MANIFEST])
    return report


def trained(trial: FrozenTrial) -> TrialRecord:
    """The trial's record, or a one-line error when it has no trained model to refit."""
    record = read(trial)
    if not is_trained(trial) or record.data is None or record.metrics is None:
        raise ExportError(f"trial {trial.number} was not trained; it cannot be exported.")
    return record


def refit_trial(
    config: StudyConfig,
    trial: FrozenTrial,
    settings: Settings,
    *,
    data: str | None = None,
    allow_other_data: bool = False,
    device: str = "cpu",
) -> Refit:
    """Refit ``trial`` on train + validation (its early-stopped epoch count, its seed) and
    evaluate it once on the test part; its features are the study's
    (``config.features.feature_set``)."""
    record = trained(trial)
    assert record.plan is not None and record.data is not None and record.metrics is not None
    feature_set = config.features.feature_set
    check_plugins(record, trial.number, feature_set)  # the plugins and files the trial validated
    columns = feature_set.columns_of(record.plan.data.features)
    bars = load_bars(data or record.data.source, columns=columns)
    if not same_bars(record.data, bars) and not allow_other_data:
        raise ExportError(
            f"{bars.source}: not the bars trial {trial.number} was searched on "
            f"({record.data.difference(bars)}). Pass the original file with "
            "--data, or --allow-other-data to refit on these bars on purpose."
        )
    if record.plugins is None:  # a trial from before plugins were hashed: audit what ships
        preflight(record.plan.data.features, bars, feature_set)
    plan, params, dataset = trial_inputs(record, bars, feature_set, settings.cache_dir)
    final = fit_final(
        params,
        dataset,
        record.metrics.log.best_epoch,
        device=device,
        fee=config.trading.fee,
        confident_share=config.trading.confident_share,
    )
    if final.log.reason:
        raise ExportError(f"the refit of trial {trial.number} diverged: {final.log.reason}")
    test = dataset.part(final.fold, dataset.split.test)
    span = (str(test.times[0]), str(test.times[-1]))
    caps = config.caps
    searched = record.resources.latency_ms if record.resources is not None else None
    return Refit(
        config,
        trial,
        record,
        plan,
        params,
        bars,
        dataset,
        final,
        np.ascontiguousarray(test.x),
        span,
        record.metrics.val,
        CapsEntry(caps.max_latency_ms, caps.latency_scale, searched),
    )


def write_bundle(refit: Refit, out: Path, overwrite: bool = False) -> ExportReport:
    """Write the bundle of ``refit`` beside ``out``, then swap it in atomically; ``out`` is
    replaced only if it is a bundle xtune wrote."""
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    try:
        report = _write(refit, folder)
        folder.chmod(0o755)  # mkdtemp made it private
        install(folder, out, overwrite)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # ours: the temporary folder, or the old bundle
    return replace(report, folder=out)


def export_bundle(
    config: StudyConfig,
    trial: FrozenTrial,
    out: Path,
    settings: Settings,
    *,
    data: str | None = None,
    allow_other_data: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
) -> ExportReport:
    """Refit ``trial`` on train + validation (its early-stopped epoch count, its seed), evaluate
    once on the test part, and write the bundle to ``out``: written beside it, then swapped
    in atomically; ``out`` is replaced only if it is a bundle xtune wrote."""
    check_target(
        out, overwrite, as_inputs(config.path, data, config.data.source)
    )  # before any work
    refit = refit_trial(
        config, trial, settings, data=data, allow_other_data=allow_other_data, device=device
    )
    return write_bundle(refit, out, overwrite)
