"""What a study stores about itself and each trial: one typed record each, one place for keys.

Optuna keeps free-form user attributes per trial and per study. Every key xtune writes there is
spelled in this module only: the objective writes a :class:`TrialRecord`, and replay, export,
the report and the sweep read one back with :func:`read`. Keys carry a prefix by stage
(``plan/``, ``data/``, ``worker/``, ``resources/``, ``train/``, ``metrics/``, ``retry/``,
``enqueue/``), which
is also how optuna-dashboard lists them.

Example:
    >>> rec = TrialRecord(status="infeasible", reason="over the cap: params; not trained")
    >>> TrialRecord.from_attrs(rec.to_attrs()) == rec
    True
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import optuna
from optuna.trial import FrozenTrial

from xtune.features.bars import Bars
from xtune.features.dataset import DataSpec
from xtune.features.feature_set import FeatureSet
from xtune.features.reads import read_hashes
from xtune.features.registry import PluginFile
from xtune.models._evaluate import Scores
from xtune.models._probe import Resources
from xtune.models.params import Params
from xtune.models.results import EpochRecord, Metrics, TrainLog
from xtune.search.device import DeviceRecord

_T = TypeVar("_T")
Status = Literal[
    "running", "ok", "stopped", "infeasible", "diverged", "failed", "refused", "orphaned"
]


@dataclass(frozen=True)
class Plan:
    """One trial: which bars become which windows, and what trains on them."""

    data: DataSpec
    params: Params
    units: tuple[str, ...]  # the feature groups/names switched on

    def to_json(self) -> str:
        return json.dumps(
            {"data": self.data.to_dict(), "params": self.params.to_dict(), "units": self.units}
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        data, params = DataSpec.from_dict(raw["data"]), Params.from_dict(raw["params"])
        return cls(data, params, tuple(raw["units"]))


@dataclass(frozen=True)
class DataRecord:
    """Which bars a trial saw (the rows it used are in its plan's data spec)."""

    sha256: str
    source: str
    rows: int
    span: str
    columns: str = ""  # sha256 of the precomputed columns it read ("": none, or an older record)

    @classmethod
    def of(cls, bars: Bars) -> DataRecord:
        span = f"{bars.index[0]} .. {bars.index[-1]}"
        return cls(bars.sha256, bars.source, len(bars), span, bars.columns_sha256)

    def same(self, bars: Bars) -> bool:
        """``bars`` are the ones recorded: times and OHLCV, and the precomputed columns read
        (a record from before columns were hashed can check only the first)."""
        return bars.sha256 == self.sha256 and (
            not self.columns or bars.columns_sha256 == self.columns
        )

    def difference(self, bars: Bars) -> str:
        """Which hashes differ, for a message."""
        if bars.sha256 != self.sha256:
            return f"sha256 {bars.sha256[:12]} vs {self.sha256[:12]}"
        return f"precomputed columns sha256 {bars.columns_sha256[:12]} vs {self.columns[:12]}"


@dataclass(frozen=True)
class PluginRecord:
    """A plugin file a trial's features came from: the hash of its bytes, the features it
    declares, and each file it read while it computed (absolute path -> sha256 of its bytes,
    "" where it was missing). Export and replay refuse when any of these differs now."""

    label: str  # the path as the study file resolved it
    sha256: str
    features: tuple[str, ...]
    reads: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, plugin: PluginFile, feature_set: FeatureSet) -> PluginRecord:
        """The plugin as ``feature_set`` holds it, with the files its features read in this
        process (hashed now)."""
        reads = read_hashes(feature_set[n].reads for n in plugin.features)
        return cls(plugin.label, plugin.sha256, plugin.features, reads)


def process_identity(pid: int) -> tuple[int, str]:
    """(start time in clock ticks since boot, pid namespace) of a live process, or (0, "")
    where it is gone or unknown. With the pid it names one process: a reused pid (a restarted
    container) has another start time, another container another namespace."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        started = int(stat.rpartition(")")[2].split()[19])  # field 22 of proc(5)
        return started, str(Path(f"/proc/{pid}/ns/pid").readlink())
    except (OSError, ValueError, IndexError):
        return 0, ""


@dataclass(frozen=True)
class Worker:
    """The process that ran a trial (the sweep finds its owner by it) and the seed its sampler
    drew with: each worker of each run draws a fresh one, recorded here, so no two workers or
    resumed runs repeat each other's start-up trials, and every run can be retraced."""

    host: str
    pid: int
    seed: int
    started: int = 0  # see process_identity
    ns: str = ""

    @classmethod
    def of(cls, pid: int, seed: int) -> Worker:
        return cls(socket.gethostname(), pid, seed, *process_identity(pid))

    @classmethod
    def here(cls, seed: int) -> Worker:
        return cls.of(os.getpid(), seed)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no inf


# TrainLog field -> key; its ``reason`` is stored apart from the trial's own train/reason.
_LOG_KEYS = {
    "curve": "train/curve",
    "epochs_run": "train/epochs_run",
    "best_epoch": "train/best_epoch",
    "seconds": "train/seconds",
    "stopped": "train/stopped",
    "reason": "train/diverged",
}
_SCORE_KEYS = {f.name: f"metrics/{f.name}" for f in fields(Scores)}
_LATER_SCORES = ("bars_per_year",)  # Scores fields a trial stored by an older xtune lacks


def _metrics_attrs(m: Metrics) -> dict[str, Any]:
    """Every Scores field under ``metrics/`` (plus the edge, for people reading the
    dashboard) and the training log under ``train/``."""
    a: dict[str, Any] = {f"metrics/{name}": value for name, value in m.val.to_dict().items()}
    a["metrics/loss"] = _finite(m.val.loss)
    a |= {key: getattr(m.log, name) for name, key in _LOG_KEYS.items()}
    a["train/curve"] = [
        [r.epoch, r.train_loss, r.val_loss, r.val_accuracy, r.lr] for r in m.log.curve
    ]
    return a


def _metrics_from(a: dict[str, Any]) -> Metrics | None:
    needed = [key for name, key in _SCORE_KEYS.items() if name not in _LATER_SCORES]
    if not all(k in a for k in (*needed, *_LOG_KEYS.values())):
        return None
    val = {name: a[key] for name, key in _SCORE_KEYS.items() if key in a}
    val["loss"] = math.inf if val["loss"] is None else val["loss"]
    val["per_horizon"] = tuple(val["per_horizon"])
    log = {name: a[key] for name, key in _LOG_KEYS.items()}
    log["curve"] = tuple(EpochRecord(*row) for row in log["curve"])
    return Metrics(Scores(**val), TrainLog(**log))


def _status(a: dict[str, Any]) -> tuple[Status | None, str | None]:
    """The status and reason; a trial the sweep failed reads as orphaned, unless its owner
    finished it meanwhile (its own status then stands)."""
    status, reason = a.get("train/status"), a.get("train/reason")
    if "sweep/reason" in a and status in (None, "running"):
        return "orphaned", a["sweep/reason"]
    return status, reason


_RUNGS, _SHARE, _LABEL = "train/rungs", "train/share", "enqueue/label"
_PLUGINS = "features/plugins"


def rungs_of_attrs(a: dict[str, Any]) -> dict[str, tuple[float, ...]]:
    """Rung -> objective values, the rungs whose values are all finite (a diverged one not)."""
    raw = a.get(_RUNGS) or {}
    return {k: tuple(v) for k, v in raw.items() if all(x is not None for x in v)}


def rungs_of(trial: FrozenTrial) -> dict[str, tuple[float, ...]]:
    """The rungs a trial reached, read without parsing the rest of its record."""
    return rungs_of_attrs(trial.user_attrs)


def share_of(trial: FrozenTrial) -> float:
    """What a stopped trial cost the budget (its compute, in trained trials); 0 if unset."""
    return float(trial.user_attrs.get(_SHARE, 0.0))


def label_of(trial: FrozenTrial) -> str | None:
    """The label of a trader's own setup (``[[enqueue]]``), or None, without parsing the rest."""
    return trial.user_attrs.get(_LABEL)


def status_of(trial: FrozenTrial) -> Status | None:
    """A trial's status alone, without parsing the rest of its record: budget counting and
    progress polling ask it of every trial, often. The status is written last, so "ok"
    means the metrics are there."""
    return _status(trial.user_attrs)[0]


@dataclass(frozen=True)
class TrialRecord:
    """Everything xtune stores about one trial. A field left ``None`` is not written, so the
    objective can store the record in stages (owner first, then plan, then results).

    ``status``: ``running`` (not finished yet), ``ok`` (trained), ``stopped`` (early stopping
    ended it at a rung; its values are the rung's), ``infeasible`` (over a cap, not trained),
    ``diverged``, ``failed`` (training raised, e.g. out of memory), ``refused``
    (an enqueued trial beyond the caps) or ``orphaned`` (its worker died; requeued by the sweep).
    """

    status: Status | None = None
    reason: str | None = None
    worker: Worker | None = None
    plan: Plan | None = None
    data: DataRecord | None = None
    resources: Resources | None = None
    feasible: bool | None = None
    threads: int | None = None
    device: DeviceRecord | None = None
    metrics: Metrics | None = None
    retry_of: int | None = None
    attempt: int | None = None  # 0: the first try of this configuration; n: its n-th retry
    swept: str | None = None  # why the sweep failed it (its owner died); status then "orphaned"
    rungs: dict[str, tuple[float, ...]] | None = None  # rung -> objective values there
    share: float | None = None  # a stopped trial: what it cost the budget, in trained trials
    label: str | None = None  # a trader's own setup, queued by [[enqueue]] or `xtune enqueue`
    plugins: tuple[PluginRecord, ...] | None = None  # the plugin files its features came from

    def to_attrs(self) -> dict[str, Any]:
        a: dict[str, Any] = {}
        if self.worker is not None:
            a |= _fields(self.worker, "worker")
        if self.plan is not None:  # features/* are for people reading the dashboard
            a |= {
                "plan/json": self.plan.to_json(),
                "features/list": list(self.plan.data.features),
                "features/units": list(self.plan.units),
            }
        if self.data is not None:
            a |= _fields(self.data, "data")
        if self.resources is not None:
            a |= _fields(self.resources, "resources")
        if self.feasible is not None:
            a["resources/feasible"] = self.feasible
        if self.threads is not None:
            a["train/threads"] = self.threads
        if self.device is not None:
            a |= _fields(self.device, "run")
        if self.metrics is not None:
            a |= _metrics_attrs(self.metrics)
        if self.retry_of is not None:
            a["retry/of"] = self.retry_of
        if self.attempt is not None:
            a["retry/attempt"] = self.attempt
        if self.swept is not None:
            a["sweep/reason"] = self.swept
        if self.rungs is not None:
            a[_RUNGS] = {k: [_finite(x) for x in v] for k, v in self.rungs.items()}
        if self.share is not None:
            a[_SHARE] = self.share
        if self.label is not None:
            a[_LABEL] = self.label
        if self.plugins is not None:
            a[_PLUGINS] = [asdict(p) for p in self.plugins]
        # Status last: a write cut off midway never shows "ok" without the metrics before it.
        if self.reason is not None:
            a["train/reason"] = self.reason
        if self.status is not None:
            a["train/status"] = self.status
        return a

    @classmethod
    def from_attrs(cls, a: dict[str, Any]) -> TrialRecord:
        """Tolerant of a record cut off mid-write (a worker killed while storing it): a part
        with a key missing reads as absent, and a trial without its metrics is not trained."""
        status, reason = _status(a)
        plan = a.get("plan/json")
        return cls(
            status=status,
            reason=reason,
            worker=_part(Worker, a, "worker"),
            plan=Plan.from_json(plan) if plan else None,
            data=_part(DataRecord, a, "data"),
            resources=_part(Resources, a, "resources"),
            feasible=a.get("resources/feasible"),
            threads=a.get("train/threads"),
            device=_part(DeviceRecord, a, "run"),
            metrics=_metrics_from(a),
            retry_of=a.get("retry/of"),
            attempt=a.get("retry/attempt"),
            swept=a.get("sweep/reason"),
            rungs=rungs_of_attrs(a) or None,
            share=a.get(_SHARE),
            label=a.get(_LABEL),
            plugins=_plugins_from(a),
        )


def _plugins_from(a: dict[str, Any]) -> tuple[PluginRecord, ...] | None:
    raw = a.get(_PLUGINS)  # None: a trial from before plugins were recorded, or cut off
    if raw is None:
        return None
    return tuple(
        PluginRecord(p["label"], p["sha256"], tuple(p["features"]), p["reads"]) for p in raw
    )


def _fields(part: Any, prefix: str) -> dict[str, Any]:
    return {f"{prefix}/{f.name}": getattr(part, f.name) for f in fields(part)}


def _part(cls: type[_T], a: dict[str, Any], prefix: str) -> _T | None:
    """``cls`` from the keys ``prefix/<field>``, or None unless every field without a default
    is there (a field added later has one, so older trials still read)."""
    present = {f.name: a[f"{prefix}/{f.name}"] for f in fields(cls) if f"{prefix}/{f.name}" in a}  # type: ignore[arg-type]
    needed = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}  # type: ignore[arg-type]
    return cls(**present) if needed <= present.keys() else None


def write(trial: optuna.Trial, record: TrialRecord) -> None:
    """Store the record's set fields on a running trial."""
    for key, value in record.to_attrs().items():
        trial.set_user_attr(key, value)


def read(trial: FrozenTrial) -> TrialRecord:
    return TrialRecord.from_attrs(trial.user_attrs)


def mark(storage: optuna.storages.BaseStorage, trial_id: int, record: TrialRecord) -> None:
    """Store fields on a trial by id, from outside its worker (the sweep)."""
    for key, value in record.to_attrs().items():
        storage.set_trial_user_attr(trial_id, key, value)
