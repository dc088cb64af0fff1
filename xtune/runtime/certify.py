"""``xtune certify``: is this PC (the trading PC) fit to run this bundle? Torch-free.

Verifies the checksums, re-checks onnxruntime's fp32 against torch's probabilities and int8
against fp32 on the reference windows the bundle stores (format 4), times the live
:class:`~xtune.runtime.predictor.Predictor` bar by bar (features included) and the bare model,
compares with the study's latency cap and with the latency measured at export (how much slower
this CPU is), and names the CPU's vector instructions.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from xtune.errors import DataError, XtuneError
from xtune.features.bars import Bars, load_bars
from xtune.features.sample import synthetic_bars
from xtune.runtime.bundle import SUMS, Bundle, load_bundle
from xtune.runtime.predictor import LivePredictor, Prediction, Predictor
from xtune.runtime.reference import (
    INT8_MIN_AGREEMENT,
    LATENCY_BARS,
    PARITY_TOL,
    Reference,
    load_reference,
    parity,
    reference_bars,
)
from xtune.runtime.session import open_session
from xtune.runtime.timing import Latency, ort_latency

FORMAT = "xtune-certify"
VECTOR_FLAGS = ("fma", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: could not be checked here; ``detail`` says why
    detail: str


@dataclass(frozen=True)
class Cpu:
    name: str
    vector: tuple[str, ...] | None  # VECTOR_FLAGS this CPU has; None: unknown on this OS


@dataclass(frozen=True)
class CertifyReport:
    bundle: str
    format_version: int
    cpu: Cpu
    model: str  # the file the Predictor runs on this PC
    precision: str  # its precision: "int8" or "fp32"
    checks: tuple[Check, ...]
    bar_ms: Latency  # Predictor.update: one bar in, probabilities out, features included
    bars: str  # where the timed bars came from
    model_ms: dict[str, Latency]  # "fp32", "int8": the bare model, batch 1, one thread
    export_ms: float | None  # the Predictor's model at export (research PC), same measurement
    slower: float | None  # model_ms here / export_ms: how much slower this CPU is
    cap_ms: float | None
    notes: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "passed": self.passed, **asdict(self)}, indent=2)


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> Cpu:
    """The CPU's name and which of :data:`VECTOR_FLAGS` it has (Linux); elsewhere unknown."""
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return Cpu(platform.processor() or platform.machine() or "unknown", None)
    info: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "flags" not in info:
        return Cpu(name, None)
    have = set(info["flags"].split())
    return Cpu(name, tuple(f for f in VECTOR_FLAGS if f in have))


def _parity(bundle: Bundle, ref: Reference | None) -> tuple[Check, str]:
    if ref is None:
        note = (
            f"format {bundle.manifest.format_version} bundle: it stores no reference windows, so "
            "fp32 parity with torch and int8 agreement could not be re-checked here (not a "
            "failure; export again with this xtune to certify them)."
        )
        return Check("fp32 parity", None, "not stored in this bundle"), note
    diff = parity(bundle, ref, open_session(bundle, fp32=True))
    ok = diff <= PARITY_TOL
    bound = f"(<= {PARITY_TOL})" if ok else f"> {PARITY_TOL}"
    detail = (
        f"max |onnxruntime fp32 - torch| {diff:.2e} {bound} over {len(ref.x)} reference windows"
    )
    return Check("fp32 parity", ok, detail), ""


def _int8(bundle: Bundle, bot: Predictor) -> Check:
    m = bundle.manifest.model
    if m.file == m.fp32:
        return Check(
            "int8 agreement", None, f"export kept no int8 model ({bundle.manifest.int8.reason})"
        )
    share = bot.int8_agreement
    if share is None:
        return Check("int8 agreement", None, "no reference windows: export's check stands")
    detail = f"int8 and fp32 agree on {share:.2%} of reference classes (>= {INT8_MIN_AGREEMENT:.0%} needed)"
    if share < INT8_MIN_AGREEMENT:
        detail += f"; the Predictor uses {m.fp32} on this PC"
    return Check("int8 agreement", share >= INT8_MIN_AGREEMENT, detail)


def bars_to_time(bundle: Bundle, bars: Bars | None, history: int) -> tuple[Bars, str]:
    """``bars``, else those the bundle stores, else synthetic ones; and where they came from."""
    if bars is not None:
        return bars, bars.source
    stored, entry = reference_bars(bundle), bundle.manifest.reference
    if stored is not None and entry is not None:
        return stored, f"{entry.bars} (stored at export)"
    interval = max(1, round(bundle.manifest.data.interval_s))
    frame = synthetic_bars(history + LATENCY_BARS, freq=f"{interval}s")
    return load_bars(frame, name="synthetic"), "synthetic (the bundle stores no bars; pass --data)"


def bar_latency(bot: LivePredictor, bars: Bars) -> Latency:
    """Predictor.update, bar in to probabilities out, over up to LATENCY_BARS bars that follow
    the history the Predictor needs."""
    return feed(bot, bars)[0]


def feed(bot: LivePredictor, bars: Bars) -> tuple[Latency, list[Prediction]]:
    """:func:`bar_latency`, with the Predictor's answer at each timed bar."""
    if len(bars) <= bot.history:
        raise DataError(
            f"{bars.source}: {len(bars)} bars, but timing the Predictor needs more than its "
            f"history of {bot.history} (best {bot.history + LATENCY_BARS}). Pass longer --data."
        )
    tail = bars.frame.iloc[-(bot.history + LATENCY_BARS) :]
    bot.predict_last(Bars(tail.iloc[: bot.history], bars.source))
    new = tail.iloc[bot.history :]
    rows = new.to_dict("records")
    updates = [
        {"time": t, **{str(k): v for k, v in r.items()}}
        for t, r in zip(new.index, rows, strict=True)
    ]
    seconds, answers = [], []
    for bar in updates:
        start = time.perf_counter()
        answer = bot.update(bar)
        seconds.append(time.perf_counter() - start)
        answers.append(answer)
    return Latency.of(seconds), answers


def _model_latency(bundle: Bundle, ref: Reference | None) -> dict[str, Latency]:
    """The bare fp32 (and int8) model, batch 1, one thread: as export measured it."""
    m = bundle.manifest
    x = ref.x[:1] if ref is not None else np.zeros((1, m.window, len(m.features)), np.float32)
    out = {"fp32": ort_latency(bundle.read(m.model.fp32), x, m.model.input)}
    if m.model.file != m.model.fp32:
        out["int8"] = ort_latency(bundle.read(m.model.file), x, m.model.input)
    return out


def _cap(
    bundle: Bundle, here: Latency, model: str, override: float | None
) -> tuple[Check, float | None]:
    caps = bundle.manifest.caps
    cap = override if override is not None else caps.max_latency_ms if caps else None
    if cap is None:
        return Check("latency cap", None, "the bundle records no cap; pass --max-latency-ms"), None
    ok = here.p50 <= cap
    source = "--max-latency-ms" if override is not None else "the study's max_latency_ms"
    verdict = "within" if ok else "OVER"
    detail = f"{model}: {here.p50:.3f} ms per window (p50) here, {verdict} {source} {cap:g} ms"
    return Check("latency cap", ok, detail), cap


def certify(
    bundle_dir: str | Path,
    bars: str | Path | Bars | None = None,
    max_latency_ms: float | None = None,
) -> CertifyReport:
    """Certify a bundle on this PC; see the module docstring. A failed check is a report with
    ``passed`` False, not an exception.

    Raises:
        BundleError: the bundle is missing, modified, or of an unknown format.
        DataError: ``bars`` unusable for timing (too few, another interval).
    """
    if max_latency_ms is not None and not (math.isfinite(max_latency_ms) and max_latency_ms > 0):
        raise XtuneError(f"--max-latency-ms {max_latency_ms}: write a positive number of ms.")
    bundle = load_bundle(bundle_dir)
    files = Check(
        "checksums", True, f"{len(bundle.manifest.files) + 1} files match {SUMS} and the manifest"
    )
    if bars is not None and not isinstance(bars, Bars):  # a file: with the bundle's columns
        bars = load_bars(bars, columns=bundle.manifest.columns)
    bot = Predictor(bundle, threads=1)  # re-checks int8 against fp32 here, at load
    ref = load_reference(bundle)
    fp32, note = _parity(bundle, ref)
    timed_bars, source = bars_to_time(bundle, bars, bot.history)
    per_bar = bar_latency(bot, timed_bars)
    model_ms = _model_latency(bundle, ref)
    used = "int8" if bot.model != bundle.manifest.model.fp32 else "fp32"
    cap, cap_ms = _cap(bundle, model_ms[used], bot.model, max_latency_ms)
    export_ms = bundle.manifest.latency_ms.get(f"onnx_{used}")
    return CertifyReport(
        bundle=str(bundle.folder),
        format_version=bundle.manifest.format_version,
        cpu=cpu_info(),
        model=bot.model,
        precision=used,
        checks=(files, fp32, _int8(bundle, bot), cap),
        bar_ms=per_bar,
        bars=source,
        model_ms=model_ms,
        export_ms=export_ms,
        slower=model_ms[used].p50 / export_ms if export_ms else None,
        cap_ms=cap_ms,
        notes=(note,) if note else (),
        versions=runtime_versions(),
        created=datetime.now(UTC).isoformat(),
    )


def runtime_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("xtune", "onnxruntime", "numpy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
