"""``manifest.json``: the typed description of a bundle, written by export, read by predict.

Torch-free. The format version is checked in one place, :meth:`Manifest.from_json`; every
field a reader uses is typed here, so a missing or mistyped key is one clear error naming it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from xtune.errors import BundleError

FORMAT = "xtune-bundle"
FORMAT_VERSION = 6  # 3: history; 4: reference sample, caps, test span, fee; 5: own features;
# 6: the files plugins read, the training bars' largest move
READS = (
    2,
    3,
    4,
    5,
    6,
)  # version 2 bundles predate ``history``; predict derives it from the catalog


@dataclass(frozen=True)
class ModelEntry:
    """The ONNX files and their tensor names (from the exporter, not hard-coded by readers)."""

    file: str  # what predict runs: model.int8.onnx when export kept it, else model.onnx
    fp32: str
    family: str
    input: str  # [batch, window, features] float32
    logits: str  # [batch, horizons, classes]
    returns: str  # [batch, horizons], in units of return_scale


@dataclass(frozen=True)
class FeatureEntry:
    name: str
    group: str
    warmup: int
    params: dict[str, Any]
    origin: str = ""  # "": the catalog; "plugin:<sha256>": a plugin file; "column" (format 5)


@dataclass(frozen=True)
class PluginEntry:
    """A trader's feature file, copied into the bundle and run there (format 5)."""

    file: str  # the plugin's bytes in the bundle, listed in ``files``
    name: str  # the file's name where the study loaded it
    sha256: str
    features: tuple[str, ...]  # the features it declares that this model uses
    # Files it read while it computed: absolute path -> sha256 of the bytes the model was
    # trained and tested on. Not copied into the bundle (the plugin opens its own path): the
    # bundle refuses to load where one is missing or differs.
    reads: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataEntry:
    sha256: str
    source: str
    rows: int
    span: tuple[str, str]
    searched_on_same_bars: bool
    interval_s: float  # the training bars' typical (median) interval; live bars must match
    # The untouched test part: times of its first and last sample (the bar each window ends
    # at; its label looks up to the longest horizon further). None: before version 4.
    test_span: tuple[str, str] | None = None
    # The largest absolute log change between consecutive closes of the bars: the live
    # Predictor refuses a far larger jump (another market's bar). None: not recorded, no check.
    max_log_move: float | None = None


@dataclass(frozen=True)
class StudyEntry:
    name: str
    trial: int
    params: dict[str, Any]  # the trial's Optuna parameters
    plan: dict[str, Any]  # the trial's plan (data spec and training settings)
    epochs: int  # epochs of the final refit


@dataclass(frozen=True)
class Int8Entry:
    used: bool
    reason: str = ""
    agreement: float | None = None
    latency_ms: float | None = None
    speedup: float | None = None
    sample_agreement: float | None = None  # on the reference windows (format 4)


@dataclass(frozen=True)
class ReferenceEntry:
    """What ``xtune certify`` re-checks on the trading PC (format 4), every file listed in
    ``files`` with its hash."""

    rows: str  # .npy [windows + window - 1, F] float32: scaled features of the last test windows
    expected: str  # .npy [windows, H, C] float32: torch's fp32 probabilities for those windows
    windows: int
    bars: str  # .csv: the data's last bars (history + a few hundred), for per-bar latency


@dataclass(frozen=True)
class CapsEntry:
    """The study's latency cap and what the search measured for this trial (format 4)."""

    max_latency_ms: float  # one window, batch 1, one thread; ms of the trading PC if scaled
    latency_scale: float  # the search multiplied its measured latency by this before the cap
    searched_ms: float | None  # the trial's latency as the search measured it (unscaled)


@dataclass(frozen=True)
class TeacherEntry:
    """The model a distilled student learned from (``xtune distill``). The bundle's own model,
    metrics and latencies are the student's; these are the teacher's, scored on the same test
    part, and timed together with the student, so the two compare from the bundle alone."""

    study: str
    trial: int
    model: dict[str, Any]  # the teacher's model config (the student's is in ``study.plan``)
    params: int
    metrics: dict[str, float | None]  # on the untouched test part, keys as ``Manifest.metrics``
    latency_ms: float  # ONNX fp32, batch 1, one thread, on the research PC
    speedup: float  # its latency over the student's, timed in interleaved rounds
    temperature: float  # the distillation's settings
    weight: float


@dataclass(frozen=True)
class Manifest:
    model: ModelEntry
    features: tuple[FeatureEntry, ...]
    warmup: int
    scaler: dict[str, Any]  # RobustScaler.to_dict()
    window: int
    horizons: tuple[int, ...]
    classes: int
    class_names: tuple[str, ...]
    dead_zone: float
    return_scale: tuple[float, ...]
    data: DataEntry
    study: StudyEntry
    metrics: dict[str, dict[str, float | None]]  # "validation" and "test"
    latency_ms: dict[str, float | None]
    int8: Int8Entry
    parity_max_abs_diff: float
    versions: dict[str, str]
    files: dict[str, str]  # name -> sha256 of every other file in the bundle
    created: str
    # Bars predict needs for the newest window: the window plus the features' warm-up and
    # memory (history_of), so that no value depends on where the bars begin. None: version 2.
    history: int | None = None
    reference: ReferenceEntry | None = None  # None: format 2 or 3, nothing to re-check
    caps: CapsEntry | None = None
    fee: float | None = None  # the study's fee per unit of position change (version 4 on)
    plugins: tuple[PluginEntry, ...] = ()  # own feature files the model's features need
    columns: tuple[str, ...] = ()  # precomputed columns the live bars must carry
    teacher: TeacherEntry | None = None  # a distilled student's teacher; None: not distilled
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # room for later, ignored by readers

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str, where: str = "manifest.json") -> Manifest:
        """Parse and check a manifest: JSON, the format and its version, every field typed.

        Raises:
            BundleError: not JSON, another format or version, or a key missing or mistyped.
        """
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BundleError(
                f"{where}: not valid JSON ({exc}); export the bundle again."
            ) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise BundleError(f"{where}: not an xtune bundle manifest (format {got!r}).")
        if raw.get("format_version") not in READS:
            exporter = raw.get("versions", {}).get("xtune", "unknown")
            raise BundleError(
                f"{where}: bundle format version {raw.get('format_version')} is not supported by "
                f"this xtune (reads versions {', '.join(map(str, READS))}). Install the xtune "
                f"version that exported it ({exporter}) or export again."
            )
        try:
            return _build(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"{where}: a key is missing or has the wrong type ({type(exc).__name__}: {exc}); "
                "the manifest was edited or damaged. Export the bundle again."
            ) from None


def _entry(cls: type[Any], raw: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise KeyError(f"unknown keys {sorted(unknown)} in {cls.__name__}")
    return cls(**raw)


def _build(raw: dict[str, Any]) -> Manifest:
    d = dict(raw)
    d["model"] = _entry(ModelEntry, d["model"])
    d["features"] = tuple(_entry(FeatureEntry, f) for f in d["features"])
    data = {**d["data"], "span": tuple(d["data"]["span"])}
    if data.get("test_span") is not None:
        data["test_span"] = tuple(data["test_span"])
    d["data"] = _entry(DataEntry, data)
    d["study"] = _entry(StudyEntry, d["study"])
    d["int8"] = _entry(Int8Entry, d["int8"])
    for key, cls in (("reference", ReferenceEntry), ("caps", CapsEntry), ("teacher", TeacherEntry)):
        if d.get(key) is not None:
            d[key] = _entry(cls, d[key])
    d["plugins"] = tuple(
        _entry(PluginEntry, {**p, "features": tuple(p["features"])}) for p in d.get("plugins", ())
    )
    for key in ("horizons", "class_names", "return_scale"):
        d[key] = tuple(d[key])
    d["columns"] = tuple(d.get("columns", ()))
    manifest: Manifest = _entry(Manifest, d)
    _check_types(manifest)
    return manifest


def _check_types(m: Manifest) -> None:
    ints = {"warmup": m.warmup, "window": m.window, "classes": m.classes}
    for key, value in ints.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
    if not all(isinstance(v, int | float) for v in m.return_scale):
        raise ValueError("return_scale must be numbers")
    if len(m.return_scale) != len(m.horizons) or len(m.class_names) != m.classes:
        raise ValueError("return_scale/horizons or class_names/classes lengths differ")
    if not isinstance(m.files, dict) or not all(isinstance(v, str) for v in m.files.values()):
        raise ValueError("files must map names to sha256 strings")
    if m.format_version >= 3 and not (
        isinstance(m.history, int) and not isinstance(m.history, bool) and m.history >= m.window
    ):
        raise ValueError(f"history must be an integer of at least the window, got {m.history!r}")
    if m.format_version >= 4 and (m.reference is None or m.caps is None):
        raise ValueError("reference and caps are required from format version 4 on")
    ref = m.reference
    if ref is not None and not {ref.rows, ref.expected, ref.bars} <= set(m.files):
        raise ValueError("the reference files are not among the bundle's files")
    if not {p.file for p in m.plugins} <= set(m.files):
        raise ValueError("the plugin files are not among the bundle's files")
    if m.format_version >= 4 and not (
        isinstance(m.fee, int | float) and m.fee >= 0 and m.data.test_span is not None
    ):
        raise ValueError(f"fee must be a non-negative number and data.test_span set, got {m.fee!r}")
