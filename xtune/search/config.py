"""Study files (TOML) -> frozen, validated config objects.

Search-space values are written as:

- a number or string: fixed, not searched (``epochs = 8``);
- ``[low, high]``: a range (``hidden = [16, 128]``); ``lr`` and ``weight_decay`` are sampled on a
  log scale, integers in steps given by the key's ``*_step`` companion where one exists;
- ``{choices = [...]}``: one of a list (``batch_size = {choices = [128, 256]}``).

Every error names the file and the key and says what to do, before any trial runs.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from xtune.errors import XtuneError
from xtune.features.catalog import CATALOG, GROUPS
from xtune.features.labels import LabelSpec
from xtune.features.split import SplitSpec
from xtune.search.ranges import Choice, Fixed, FloatRange, IntRange, Space, lowest, values

SAMPLERS = ("tpe", "nsga2", "random", "gp")
OBJECTIVES = ("accuracy", "loss", "sharpe")
FAMILIES = ("lstm", "xlstm")
LOG_SCALE = ("lr", "weight_decay")


_S = TypeVar("_S", "LSTMSpace", "XLSTMSpace")


class StudyError(XtuneError, ValueError):
    """A study file is invalid; the message names the file and key."""


@dataclass(frozen=True)
class StudySection:
    name: str
    trials: int = 20
    seed: int = 0
    sampler: str = "tpe"
    objectives: tuple[str, ...] = ("accuracy", "loss")
    storage: str = ""  # empty: a journal file beside the study file


@dataclass(frozen=True)
class DataSection:
    source: str
    window: Space = field(default_factory=lambda: Fixed(60))
    window_step: int = 8


@dataclass(frozen=True)
class FeatureSection:
    groups: tuple[str, ...] = GROUPS
    names: tuple[str, ...] = ()
    unit: str = "group"  # "group": one switch per group; "feature": one per feature
    min: int = 1
    max: int = 1000

    @property
    def units(self) -> tuple[str, ...]:
        """The switches the search flips: group names, or feature names."""
        if self.unit == "group":
            return self.groups + self.names
        grouped = tuple(n for n, f in CATALOG.items() if f.group in self.groups)
        return grouped + tuple(n for n in self.names if n not in grouped)

    def features_of(self, unit: str) -> tuple[str, ...]:
        if unit in GROUPS:
            return tuple(n for n, f in CATALOG.items() if f.group == unit)
        return (unit,)

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every feature any trial may use, in catalog order (built once per study)."""
        wanted = {n for u in self.units for n in self.features_of(u)}
        return tuple(n for n in CATALOG if n in wanted)


@dataclass(frozen=True)
class LSTMSpace:
    hidden: Space = field(default_factory=lambda: IntRange(16, 128, 8))
    hidden_step: int = 8
    layers: Space = field(default_factory=lambda: IntRange(1, 2))


@dataclass(frozen=True)
class XLSTMSpace:
    embed: Space = field(default_factory=lambda: IntRange(16, 64, 16))
    embed_step: int = 16
    heads: Space = field(default_factory=lambda: Choice((2, 4)))
    blocks: Space = field(default_factory=lambda: IntRange(1, 3))


@dataclass(frozen=True)
class ModelSection:
    families: tuple[str, ...] = FAMILIES
    lstm: LSTMSpace = field(default_factory=LSTMSpace)
    xlstm: XLSTMSpace = field(default_factory=XLSTMSpace)


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 20
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
    """Hard limits for the trading PC. Hidden size and layers bound the search space itself;
    parameters and latency are constraints checked before training."""

    max_hidden: int = 256  # LSTM hidden / xLSTM embed
    max_layers: int = 4  # LSTM layers / xLSTM blocks
    max_params: int = 1_000_000
    max_latency_ms: float = 10.0  # one window, batch 1, one CPU thread


@dataclass(frozen=True)
class TradingSection:
    fee: float = 0.0001  # cost per unit of position change, in log-return units


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

    @property
    def directions(self) -> list[str]:
        return [
            "maximize" if o in ("accuracy", "sharpe") else "minimize" for o in self.study.objectives
        ]

    @property
    def default_storage_path(self) -> Path:
        return self.path.with_name(f"{self.study.name}.journal")

    @property
    def artifacts_dir(self) -> Path:
        return self.path.with_name(f"{self.study.name}.artifacts")


# ------------------------------------------------------------------------------- parsing
def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate a study file.

    Raises:
        StudyError: naming the file and key (unknown key with a suggestion, min > max, a cap
            below the search space's minimum, unknown sampler/feature/family...).
    """
    path = Path(path)
    if not path.exists():
        raise StudyError(
            f"{path}: study file not found. See studies/quickstart.toml for an example."
        )
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from exc
    return _Parser(path).study_config(raw)


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> StudyError:
        return StudyError(f"{self.path}: [{key}] {message}")

    def table(
        self, raw: dict[str, Any], key: str, cls: type, required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        data = raw.get(key.split(".")[-1], {})
        if not isinstance(data, dict):
            raise self.fail(key, "must be a table.")
        known = [f.name for f in fields(cls)]
        for name in data:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = (
                    f" Did you mean '{close[0]}'?" if close else f" Known keys: {', '.join(known)}."
                )
                raise self.fail(key, f"unknown key '{name}'.{hint}")
        for name in required:
            if name not in data:
                raise self.fail(key, f"missing required key '{name}'.")
        return dict(data)

    def space(
        self, key: str, value: Any, *, integer: bool, step: int = 1, log: bool = False
    ) -> Space:
        if isinstance(value, dict):
            if (
                set(value) != {"choices"}
                or not isinstance(value["choices"], list)
                or not value["choices"]
            ):
                raise self.fail(
                    key, "a choice is written {choices = [a, b, ...]} with at least one value."
                )
            return Choice(tuple(value["choices"]))
        if isinstance(value, list):
            if len(value) != 2 or not all(isinstance(v, int | float) for v in value):
                raise self.fail(key, f"a range is written [low, high], got {value!r}.")
            low, high = value
            if low > high:
                raise self.fail(
                    key, f"low {low} > high {high}: write [low, high] with low <= high."
                )
            if log and low <= 0:
                raise self.fail(key, f"is searched on a log scale, so low must be > 0, got {low}.")
            if integer:
                if int(low) != low or int(high) != high:
                    raise self.fail(key, f"needs whole numbers, got {value!r}.")
                return IntRange(int(low), int(high), step)
            return FloatRange(float(low), float(high), log)
        if isinstance(value, int | float | str | bool):
            return Fixed(value)
        raise self.fail(
            key, f"cannot read {value!r}: use a number, [low, high] or {{choices = [...]}}."
        )

    def study_config(self, raw: dict[str, Any]) -> StudyConfig:
        sections = {f.name for f in fields(StudyConfig)} - {"path"}
        for name in raw:
            if name not in sections:
                close = difflib.get_close_matches(name, sorted(sections), n=1)
                hint = f" Did you mean [{close[0]}]?" if close else ""
                raise StudyError(f"{self.path}: unknown section [{name}].{hint}")
        study = self.study(raw)
        data = self.data(raw)
        labels = self.labels(raw)
        split = self.split(raw)
        features = self.features(raw)
        model = self.model(raw)
        train = self.train(raw)
        caps = CapsSection(**self.table(raw, "caps", CapsSection))
        trading = TradingSection(**self.table(raw, "trading", TradingSection))
        config = StudyConfig(
            study, data, labels, split, features, model, train, caps, trading, self.path
        )
        self.check_caps(config)
        return config

    def study(self, raw: dict[str, Any]) -> StudySection:
        d = self.table(raw, "study", StudySection, required=("name",))
        if d.get("sampler", "tpe") not in SAMPLERS:
            raise self.fail(
                "study", f"sampler '{d['sampler']}' is unknown; use one of {', '.join(SAMPLERS)}."
            )
        objectives = tuple(d.get("objectives", ("accuracy", "loss")))
        bad = [o for o in objectives if o not in OBJECTIVES]
        if bad or not objectives or len(set(objectives)) != len(objectives):
            raise self.fail(
                "study",
                f"objectives {list(objectives)}: pick distinct ones from {list(OBJECTIVES)}.",
            )
        if int(d.get("trials", 20)) < 1:
            raise self.fail("study", "trials must be >= 1.")
        d["objectives"] = objectives
        return StudySection(**d)

    def data(self, raw: dict[str, Any]) -> DataSection:
        d = self.table(raw, "data", DataSection, required=("source",))
        source = str(d["source"])
        if not source.startswith("sample:") and not Path(source).is_absolute():
            source = str((self.path.parent / source).resolve())
        step = int(d.get("window_step", 8))
        window = self.space("data.window", d.get("window", 60), integer=True, step=step)
        if lowest(window) < 2:
            raise self.fail("data", "window must be >= 2 bars.")
        return DataSection(source, window, step)

    def labels(self, raw: dict[str, Any]) -> LabelSpec:
        d = self.table(raw, "labels", LabelSpec)
        try:
            return LabelSpec(
                tuple(d.get("horizons", (1,))),
                float(d.get("dead_zone", 0.0)),
                int(d.get("classes", 2)),
            )
        except XtuneError as exc:
            raise self.fail("labels", str(exc)) from None

    def split(self, raw: dict[str, Any]) -> SplitSpec:
        d = self.table(raw, "split", SplitSpec)
        try:
            return SplitSpec(**d)
        except (XtuneError, TypeError) as exc:
            raise self.fail("split", str(exc)) from None

    def features(self, raw: dict[str, Any]) -> FeatureSection:
        d = self.table(raw, "features", FeatureSection)
        groups = tuple(d.get("groups", GROUPS))
        names = tuple(d.get("names", ()))
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise self.fail("features", f"unknown group(s) {unknown}; groups are {list(GROUPS)}.")
        unknown = [n for n in names if n not in CATALOG]
        if unknown:
            raise self.fail("features", f"unknown feature(s) {unknown}; run `xtune features list`.")
        if d.get("unit", "group") not in ("group", "feature"):
            raise self.fail("features", "unit must be 'group' or 'feature'.")
        section = FeatureSection(
            groups, names, d.get("unit", "group"), int(d.get("min", 1)), int(d.get("max", 1000))
        )
        if not section.units:
            raise self.fail("features", "nothing to search: list at least one group or name.")
        if section.min < 1 or section.min > section.max:
            raise self.fail(
                "features", f"min {section.min} and max {section.max} need 1 <= min <= max."
            )
        if section.min > len(section.units):
            raise self.fail(
                "features",
                f"min {section.min} exceeds the {len(section.units)} searchable {section.unit}s.",
            )
        return section

    def model(self, raw: dict[str, Any]) -> ModelSection:
        d = self.table(raw, "model", ModelSection)
        families = tuple(d.get("families", FAMILIES))
        bad = [f for f in families if f not in FAMILIES]
        if bad or not families:
            raise self.fail(
                "model", f"families {list(families)}: use one or more of {list(FAMILIES)}."
            )
        lstm = self.integer_spaces("model.lstm", self.table(d, "model.lstm", LSTMSpace), LSTMSpace)
        xlstm = self.integer_spaces(
            "model.xlstm", self.table(d, "model.xlstm", XLSTMSpace), XLSTMSpace
        )
        estep = xlstm.embed_step
        for h in values(xlstm.heads):
            for e in values(xlstm.embed, estep):
                if e % h or (2 * e) % 4:
                    raise self.fail(
                        "model.xlstm",
                        f"embed {e} is not divisible by heads {h}; use embed_step a multiple of every head count.",
                    )
        return ModelSection(families, lstm, xlstm)

    def integer_spaces(self, key: str, data: dict[str, Any], cls: type[_S]) -> _S:
        """A section of integer spaces, each with an optional ``<name>_step``; keys the file does
        not set keep the dataclass defaults (a lone ``<name>_step`` re-steps the default range)."""
        kwargs: dict[str, Any] = {}
        defaults = cls()
        for f in fields(cls):
            if f.name.endswith("_step") or (f.name not in data and f"{f.name}_step" not in data):
                continue
            step = int(data.get(f"{f.name}_step", getattr(defaults, f"{f.name}_step", 1)))
            if f.name in data:
                kwargs[f.name] = self.space(
                    f"{key}.{f.name}", data[f.name], integer=True, step=step
                )
            elif isinstance(getattr(defaults, f.name), IntRange):
                kwargs[f.name] = replace(getattr(defaults, f.name), step=step)
            if hasattr(defaults, f"{f.name}_step"):
                kwargs[f"{f.name}_step"] = step
        return cls(**kwargs)

    def train(self, raw: dict[str, Any]) -> TrainSection:
        d = self.table(raw, "train", TrainSection)
        spaces = {}
        for f in fields(TrainSection):
            if f.name in ("epochs", "patience", "schedule") or f.name not in d:
                continue
            spaces[f.name] = self.space(
                f"train.{f.name}",
                d[f.name],
                integer=f.name == "batch_size",
                log=f.name in LOG_SCALE,
            )
        section = TrainSection(
            epochs=int(d.get("epochs", 20)),
            patience=int(d.get("patience", 4)),
            schedule=str(d.get("schedule", "cosine")),
            **spaces,
        )
        if section.epochs < 1 or section.patience < 1:
            raise self.fail("train", "epochs and patience must be >= 1.")
        if section.schedule not in ("cosine", "plateau"):
            raise self.fail("train", "schedule must be 'cosine' or 'plateau'.")
        return section

    def check_caps(self, c: StudyConfig) -> None:
        caps, m = c.caps, c.model
        sizes = {"lstm": (m.lstm.hidden, m.lstm.layers, "model.lstm.hidden", "model.lstm.layers"),
                 "xlstm": (m.xlstm.embed, m.xlstm.blocks, "model.xlstm.embed", "model.xlstm.blocks")}  # fmt: skip
        for family in m.families:
            width, depth, wkey, dkey = sizes[family]
            if lowest(width) > caps.max_hidden:
                raise self.fail(
                    "caps",
                    f"max_hidden {caps.max_hidden} is below the smallest {wkey} ({lowest(width)}): no trial could fit. Raise the cap or lower {wkey}.",
                )
            if lowest(depth) > caps.max_layers:
                raise self.fail(
                    "caps",
                    f"max_layers {caps.max_layers} is below the smallest {dkey} ({lowest(depth)}): no trial could fit. Raise the cap or lower {dkey}.",
                )
        if caps.max_params < 1 or caps.max_latency_ms <= 0:
            raise self.fail("caps", "max_params and max_latency_ms must be > 0.")
