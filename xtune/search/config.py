"""Study files (TOML) -> frozen, validated config objects.

Search-space values are written as:

- a number or string: fixed, not searched (``epochs = 8``);
- ``[low, high]``: a range (``hidden = [16, 128]``); ``lr`` and ``weight_decay`` are sampled on a
  log scale, integers in steps given by the key's ``*_step`` companion where one exists;
- ``{choices = [...]}``: one of a list (``batch_size = {choices = [128, 256]}``).

Every value is checked by type and range (``_validate.RULES``) before anything is created: one
line naming the file, the ``[section] key``, the value and what to write.
"""

from __future__ import annotations

import difflib
import tomllib
import warnings
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from xtune.errors import Invalid, StudyError, XtuneError
from xtune.features.catalog import CATALOG, GROUPS
from xtune.features.feature_set import FeatureSet
from xtune.features.labels import LabelSpec
from xtune.features.split import SplitSpec
from xtune.models.families import BUILT_IN, FAMILIES, Family
from xtune.search import _validate as v
from xtune.search._counts import counts
from xtune.search.ranges import IntRange, lowest
from xtune.search.sections import (
    LOG_SCALE,
    MINIMIZED,
    OBJECTIVES,
    SAMPLERS,
    SCHEDULES,
    UNITS,
    CapsSection,
    DataSection,
    EnqueueEntry,
    FeatureSection,
    GroupCount,
    ModelSection,
    SearchSection,
    StudyConfig,
    StudySection,
    TradingSection,
    TrainSection,
)

__all__ = [
    "FAMILIES",
    "LOG_SCALE",
    "MINIMIZED",
    "OBJECTIVES",
    "SAMPLERS",
    "CapsSection",
    "DataSection",
    "EnqueueEntry",
    "FeatureSection",
    "GroupCount",
    "ModelSection",
    "SearchSection",
    "StudyConfig",
    "StudyError",
    "StudySection",
    "TradingSection",
    "TrainSection",
    "load_study_config",
]


# The keys of [features]: the section's fields, with the files and columns its feature set holds.
FEATURE_KEYS = tuple(f.name for f in fields(FeatureSection) if f.name != "feature_set")
FEATURE_KEYS += ("plugins", "columns")


# ------------------------------------------------------------------------------- parsing
def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate a study file.

    Raises:
        StudyError: naming the file and key (a value of the wrong type or out of range, an
            unknown key with a suggestion, min > max, a cap below the search space's minimum,
            unknown sampler/feature/family...).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(
            f"{path}: study file not found. See studies/quickstart.toml for an example."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _Parser(path).study_config(raw)
    except Invalid as exc:
        raise StudyError(f"{path}: {exc}") from None


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> StudyError:
        return StudyError(f"{self.path}: [{key}] {message}")

    def table(
        self,
        raw: dict[str, Any],
        key: str,
        cls: type,
        required: tuple[str, ...] = (),
        known: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """``raw``'s table ``key``; its keys are ``known`` (default: the fields of ``cls``)."""
        data = raw.get(key.split(".")[-1], {})
        if not isinstance(data, dict):
            raise self.fail(key, f"must be a table, got {v.show(data)}.")
        known = known or tuple(f.name for f in fields(cls))
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

    def numeric(self, raw: dict[str, Any], key: str, cls: type) -> dict[str, Any]:
        """A table whose keys are all single numbers, each checked against its rule."""
        return v.checked(key, self.table(raw, key, cls), tuple(f.name for f in fields(cls)))

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
        caps = self.caps(raw)
        trading = TradingSection(**self.numeric(raw, "trading", TradingSection))
        config = StudyConfig(
            study,
            data,
            labels,
            split,
            features,
            model,
            train,
            caps,
            trading,
            self.path,
            self.search(raw),
        )
        self.check_caps(config)
        if "enqueue" in raw:  # checked against the space suggest draws from, which needs config
            from xtune.search.seeds import entries

            config = replace(config, enqueue=entries(raw["enqueue"], config, "[[enqueue]]"))
        return config

    def study(self, raw: dict[str, Any]) -> StudySection:
        d = v.checked(
            "study", self.table(raw, "study", StudySection, ("name",)), ("trials", "seed")
        )
        d["name"] = v.text("study", "name", d["name"], '"eurusd_h1"', file_name=True)
        if "sampler" in d:
            d["sampler"] = v.text("study", "sampler", d["sampler"], '"tpe"', choices=SAMPLERS)
        if "storage" in d:
            example = '"" (a journal file beside the study file) or a database URL'
            d["storage"] = v.text("study", "storage", d["storage"], example, empty=True)
        if "objectives" in d:
            d["objectives"] = v.texts(
                "study", "objectives", d["objectives"], '["accuracy", "loss"]'
            )
        section = StudySection(**d)
        objectives = section.objectives
        bad = [o for o in objectives if o not in OBJECTIVES]
        if bad or not objectives or len(set(objectives)) != len(objectives):
            raise self.fail(
                "study",
                f"objectives {list(objectives)}: pick distinct ones from {list(OBJECTIVES)}.",
            )
        return section

    def data(self, raw: dict[str, Any]) -> DataSection:
        d = v.checked("data", self.table(raw, "data", DataSection, ("source",)), ("window_step",))
        source = v.text("data", "source", d.pop("source"), '"sample:synthetic" or "bars.csv"')
        if not source.startswith("sample:") and not Path(source).is_absolute():
            source = str((self.path.parent / source).resolve())
        step = d.get("window_step", DataSection.window_step)
        if "window" in d:
            d["window"] = v.space("data", "window", d["window"], step=step)
        return DataSection(source, **d)

    def labels(self, raw: dict[str, Any]) -> LabelSpec:
        d = v.checked("labels", self.table(raw, "labels", LabelSpec), ("dead_zone", "classes"))
        if "horizons" in d:
            d["horizons"] = v.numbers("labels", "horizons", d["horizons"])
        try:
            return LabelSpec(**d)
        except XtuneError as exc:
            raise self.fail("labels", str(exc)) from None

    def split(self, raw: dict[str, Any]) -> SplitSpec:
        d = self.numeric(raw, "split", SplitSpec)
        try:
            return SplitSpec(**d)
        except XtuneError as exc:
            raise self.fail("split", str(exc)) from None

    def features(self, raw: dict[str, Any]) -> FeatureSection:
        table = self.table(raw, "features", FeatureSection, known=FEATURE_KEYS)
        d = v.checked("features", table, ("min", "max"))
        count = d.pop("count", {})
        for key in ("groups", "names"):
            if key in d:
                d[key] = v.texts("features", key, d[key], '["returns", "momentum"]')
        d["feature_set"] = self.plugins(d.pop("plugins", []))
        if "columns" in d:
            columns = v.texts("features", "columns", d.pop("columns"), '["my_signal"]')
            try:
                d["feature_set"] = d["feature_set"].with_columns(columns)
            except XtuneError as exc:
                raise self.fail("features", f"columns: {exc}") from None
            d["names"] = tuple(d.get("names", ())) + columns
        if "unit" in d:
            d["unit"] = v.text("features", "unit", d["unit"], '"group"', choices=UNITS)
        section = FeatureSection(**d)
        unknown = [g for g in section.groups if g not in GROUPS]
        if unknown:
            raise self.fail("features", f"unknown group(s) {unknown}; groups are {list(GROUPS)}.")
        unknown = [n for n in section.names if n not in section.feature_set]
        if unknown:
            raise self.fail("features", f"unknown feature(s) {unknown}; run `xtune features list`.")
        if not section.units:
            raise self.fail("features", "nothing to search: list at least one group or name.")
        if section.min > section.max:
            raise self.fail(
                "features", f"min {section.min} and max {section.max} need 1 <= min <= max."
            )
        if section.min > len(section.units):
            raise self.fail(
                "features",
                f"min {section.min} exceeds the {len(section.units)} searchable {section.unit}s.",
            )
        return replace(section, count=counts(count, section))

    def plugins(self, raw: Any) -> FeatureSet:
        """The catalog and the features each plugin file (relative to the study file) declares,
        so that they can be named."""
        files = v.texts("features", "plugins", raw, '["my_features.py"]')
        try:
            return CATALOG.with_plugins([self.path.parent / f for f in files])
        except XtuneError as exc:
            raise self.fail("features", f"plugins: {exc}") from None

    def model(self, raw: dict[str, Any]) -> ModelSection:
        d = self.table(raw, "model", ModelSection, known=("families", *FAMILIES))
        example = '["lstm"]'
        families = v.texts("model", "families", d.get("families", list(BUILT_IN)), example)
        bad = [f for f in families if f not in FAMILIES]
        if bad or not families or len(set(families)) != len(families):
            raise self.fail(
                "model", f"families {list(families)}: use one or more of {list(FAMILIES)}."
            )
        return ModelSection(families, {f.name: self.family_space(d, f) for f in FAMILIES.values()})

    def family_space(self, d: dict[str, Any], family: Family) -> Any:
        """``[model.<family>]``: the family's space, keys the file leaves out at their defaults."""
        key = f"model.{family.name}"
        space = self.integer_spaces(key, self.table(d, key, family.space), family.space)
        problem = family.problem(space)
        if problem:
            raise self.fail(key, problem)
        return space

    def integer_spaces(self, key: str, data: dict[str, Any], cls: type) -> Any:
        """A section of integer spaces, each with an optional ``<name>_step``; keys the file does
        not set keep the dataclass defaults (a lone ``<name>_step`` re-steps the default range)."""
        kwargs: dict[str, Any] = {}
        defaults = cls()
        for f in fields(cls):
            step_key = f"{f.name}_step"
            if f.name.endswith("_step") or (f.name not in data and step_key not in data):
                continue
            step = getattr(defaults, step_key, 1)
            if step_key in data:
                step = v.number(key, step_key, data[step_key])
            if f.name in data:
                kwargs[f.name] = v.space(key, f.name, data[f.name], step=step)
            elif isinstance(getattr(defaults, f.name), IntRange):
                kwargs[f.name] = replace(getattr(defaults, f.name), step=step)
            if hasattr(defaults, step_key):
                kwargs[step_key] = step
        return cls(**kwargs)

    def train(self, raw: dict[str, Any]) -> TrainSection:
        fixed = ("epochs", "patience", "max_seconds")
        d = v.checked("train", self.table(raw, "train", TrainSection), fixed)
        if "schedule" in d:
            d["schedule"] = v.text(
                "train", "schedule", d["schedule"], '"cosine"', choices=SCHEDULES
            )
        for name in set(d) - {*fixed, "schedule"}:
            d[name] = v.space("train", name, d[name], log=name in LOG_SCALE)
        return TrainSection(**d)

    def search(self, raw: dict[str, Any]) -> SearchSection:
        d = self.table(raw, "search", SearchSection)
        for name, value in d.items():
            if not isinstance(value, bool):
                raise self.fail("search", f"{name} must be true or false, got {v.show(value)}.")
        return SearchSection(**d)

    def caps(self, raw: dict[str, Any]) -> CapsSection:
        """``[caps]``; the names ``max_hidden`` and ``max_layers`` are read as ``max_width`` and
        ``max_depth``, with a warning that names the new key."""
        table = raw.get("caps", {})
        if isinstance(table, dict):
            table = dict(table)
            for old, new in _RENAMED_CAPS.items():
                if old not in table:
                    continue
                if new in table:
                    raise self.fail("caps", f"{old} and {new} are one cap; keep {new} only.")
                table[new] = table.pop(old)
                warnings.warn(
                    f"{self.path}: [caps] {old} is deprecated; write {new} = {v.show(table[new])}"
                    " (it bounds every family: LSTM hidden/layers, xLSTM embed/blocks).",
                    FutureWarning,
                    stacklevel=2,
                )
        return CapsSection(**self.numeric({"caps": table}, "caps", CapsSection))

    def check_caps(self, c: StudyConfig) -> None:
        caps = c.caps
        for name in c.model.families:
            family, space = FAMILIES[name], c.model.space(name)
            for cap, limit, size in (
                ("max_width", caps.max_width, family.width),
                ("max_depth", caps.max_depth, family.depth),
            ):
                smallest, key = lowest(getattr(space, size)), f"model.{name}.{size}"
                if smallest > limit:
                    raise self.fail(
                        "caps",
                        f"{cap} {limit} is below the smallest {key} ({smallest}): no trial could fit. Raise the cap or lower {key}.",
                    )


_RENAMED_CAPS = {"max_hidden": "max_width", "max_layers": "max_depth"}
