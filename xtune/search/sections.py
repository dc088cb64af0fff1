"""The study file's sections as frozen dataclasses, with their defaults: what
``load_study_config`` returns and the rest of the code reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xtune.features.catalog import CATALOG, GROUPS
from xtune.features.feature_set import FeatureSet
from xtune.features.labels import LabelSpec
from xtune.features.registry import PluginFile
from xtune.features.split import SplitSpec
from xtune.models.families import BUILT_IN, FAMILIES
from xtune.search.ranges import Choice, Fixed, FloatRange, Space

SAMPLERS = ("tpe", "nsga2", "random", "gp")
UNITS = ("group", "feature")  # [features] unit: one switch per group, or per feature
SCHEDULES = ("cosine", "plateau")  # [train] schedule
# What a study may optimize, on validation; the second tuple is minimized, the rest maximized.
OBJECTIVES = (
    "accuracy",
    "loss",
    "sharpe",
    "edge",
    "balanced_accuracy",
    "confident_accuracy",
    "max_drawdown",
    "calmar",
)
MINIMIZED = ("loss", "max_drawdown")
LOG_SCALE = ("lr", "weight_decay")


@dataclass(frozen=True)
class StudySection:
    name: str
    trials: int = 20
    seed: int = 0
    sampler: str = "random"  # the default-sampler rule of bench/problems.py (docs/benchmarks.md)
    objectives: tuple[str, ...] = ("accuracy", "loss")
    storage: str = ""  # empty: a journal file beside the study file


@dataclass(frozen=True)
class DataSection:
    source: str
    window: Space = field(default_factory=lambda: Fixed(60))
    window_step: int = 8


@dataclass(frozen=True)
class GroupCount:
    """``[features.count] group = [low, high]``: how many of the group's features a trial uses."""

    group: str
    low: int
    high: int


@dataclass(frozen=True)
class FeatureSection:
    """``[features]``: what the search switches on and off, among the features of
    :attr:`feature_set` (the catalog with the study's ``plugins`` and ``columns``)."""

    groups: tuple[str, ...] = GROUPS
    names: tuple[str, ...] = ()
    unit: str = "group"  # "group": one switch per group; "feature": one per feature
    min: int = 1
    max: int = 1000
    count: tuple[GroupCount, ...] = ()  # unit = "feature" only; see space.suggest
    feature_set: FeatureSet = CATALOG  # with the study's plugins and columns, loaded

    @property
    def plugins(self) -> tuple[PluginFile, ...]:
        """The trader's own feature files, as loaded."""
        return self.feature_set.plugins

    @property
    def columns(self) -> tuple[str, ...]:
        """Precomputed columns of the bars, also in ``names``."""
        return self.feature_set.columns

    def members(self, group: str) -> tuple[str, ...]:
        """The units (features, with unit = "feature") of ``group`` that this study searches."""
        features = self.feature_set
        return tuple(u for u in self.units if u in features and features[u].group == group)

    def counted(self, unit: str) -> GroupCount | None:
        """The count that ``unit`` falls under, or None."""
        group = self.feature_set[unit].group if unit in self.feature_set else None
        return next((c for c in self.count if c.group == group), None)

    @property
    def units(self) -> tuple[str, ...]:
        """The switches the search flips: group names, or feature names."""
        if self.unit == "group":
            return self.groups + self.names
        grouped = tuple(n for n, f in self.feature_set.items() if f.group in self.groups)
        return grouped + tuple(n for n in self.names if n not in grouped)

    def features_of(self, unit: str) -> tuple[str, ...]:
        if unit in GROUPS:
            return tuple(n for n, f in self.feature_set.items() if f.group == unit)
        return (unit,)

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every feature any trial may use, in the feature set's order (built once per study)."""
        wanted = {n for u in self.units for n in self.features_of(u)}
        return tuple(n for n in self.feature_set if n in wanted)


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the families searched, and each family's ``[model.<name>]`` space (an
    instance of its :attr:`~xtune.models.families.Family.space`), for every known family."""

    families: tuple[str, ...] = BUILT_IN
    spaces: dict[str, Any] = field(
        default_factory=lambda: {f.name: f.space() for f in FAMILIES.values()}
    )

    def space(self, family: str) -> Any:
        return self.spaces[family]


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 20
    max_seconds: float = 0.0  # per fold's training (a trial trains one per fold); 0: no limit
    patience: int = 4
    batch_size: Space = field(default_factory=lambda: Choice((128, 256)))
    lr: Space = field(default_factory=lambda: FloatRange(3e-4, 1e-2, log=True))
    weight_decay: Space = field(default_factory=lambda: FloatRange(1e-5, 1e-1, log=True))
    dropout: Space = field(default_factory=lambda: FloatRange(0.0, 0.3))
    return_weight: Space = field(default_factory=lambda: FloatRange(0.0, 1.0))
    label_smoothing: Space = field(default_factory=lambda: Fixed(0.0))
    focal_gamma: Space = field(default_factory=lambda: Fixed(0.0))
    schedule: str = "cosine"


@dataclass(frozen=True)
class CapsSection:
    """Hard limits for the trading PC. Width and depth bound the search space itself (each
    family says which of its sizes they are: LSTM hidden and layers, xLSTM embed and blocks);
    parameters and latency are constraints checked before training."""

    max_width: int = 256
    max_depth: int = 4
    max_params: int = 1_000_000
    max_latency_ms: float = 10.0  # one window, batch 1, one CPU thread
    # The trading PC's slowness against the search machine (``xtune certify`` prints it): the
    # measured latency is multiplied by it before the cap, so the cap is the trading PC's ms.
    latency_scale: float = 1.0


@dataclass(frozen=True)
class TradingSection:
    fee: float = 0.0001  # cost per unit of position change, in log-return units
    confident_share: float = 0.3  # confident_accuracy: the most confident share of windows


@dataclass(frozen=True)
class SearchSection:
    """How the search spends its trials. ``early_stop``: stop a trial at a rung (an epoch of
    its first fold, or the end of a walk-forward fold) when most trials that reached that rung
    rank in better non-dominated fronts; see :mod:`xtune.search.pruning`."""

    early_stop: bool = True


@dataclass(frozen=True)
class EnqueueEntry:
    """A trader's own setup, queued as one of the study's first trials (``[[enqueue]]`` or
    ``xtune enqueue``): parameters in the study's own names (as ``xtune status --format json`` prints
    them), the features switched on (``None``: left to the parameters or the sampler) and a
    label, shown by ``xtune status`` and the dashboard. See :mod:`xtune.search.seeds`."""

    label: str
    parameters: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StudyConfig:
    study: StudySection
    data: DataSection
    labels: LabelSpec
    split: SplitSpec
    features: FeatureSection
    model: ModelSection
    train: TrainSection
    caps: CapsSection
    trading: TradingSection
    path: Path
    search: SearchSection = field(default_factory=SearchSection)
    enqueue: tuple[EnqueueEntry, ...] = ()

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        return ["minimize" if o in MINIMIZED else "maximize" for o in self.study.objectives]

    @property
    def signs(self) -> tuple[float, ...]:
        """+1 for a maximized objective, -1 for a minimized one, in objective order."""
        return tuple(-1.0 if o in MINIMIZED else 1.0 for o in self.study.objectives)

    @property
    def default_storage_path(self) -> Path:
        return self.path.with_name(f"{self.study.name}.journal")
