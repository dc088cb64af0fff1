"""The study-file reference (``docs/study-file.md``), generated from the tables that validate a
study file: each section's dataclass (its keys and defaults), :data:`~xtune.search._validate.RULES`
and each family's rules (what a number may be), and the lists of names a key may take.

    python -m xtune.search.study_reference > docs/study-file.md

A test regenerates it and compares, so the page cannot drift from the code; a key without a
line in :data:`MEANING` fails that test too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import MISSING, Field, fields
from typing import Any

from xtune.features.catalog import GROUPS
from xtune.features.labels import LabelSpec
from xtune.features.split import SplitSpec
from xtune.models.families import BUILT_IN, FAMILIES, Family, KeyRule
from xtune.search._validate import RULES, Rule, show
from xtune.search.config import FEATURE_KEYS
from xtune.search.ranges import Choice, Fixed, FloatRange, IntRange
from xtune.search.sections import (
    OBJECTIVES,
    SAMPLERS,
    SCHEDULES,
    UNITS,
    CapsSection,
    DataSection,
    FeatureSection,
    SearchSection,
    StudySection,
    TradingSection,
    TrainSection,
)

# The sections a study file may hold, in the order the reference lists them.
SECTIONS: tuple[tuple[str, type], ...] = (
    ("study", StudySection),
    ("data", DataSection),
    ("labels", LabelSpec),
    ("split", SplitSpec),
    ("features", FeatureSection),
    ("train", TrainSection),
    ("caps", CapsSection),
    ("trading", TradingSection),
    ("search", SearchSection),
)
# Keys that take one of a list of names (or a list of them), and those lists.
NAMES: dict[str, tuple[str, ...]] = {
    "study.sampler": SAMPLERS,
    "study.objectives": OBJECTIVES,
    "features.groups": GROUPS,
    "features.unit": UNITS,
    "train.schedule": SCHEDULES,
    "model.families": tuple(FAMILIES),
}
# What the keys without a number rule or a list of names accept.
TEXT: dict[str, str] = {
    "study.name": "letters, digits and `_.-`, up to 100",
    "study.storage": "a URL",
    "data.source": "a path, or `sample:NAME`",
    "features.names": "feature or column names (a list)",
    "features.count": "a table: `group = [low, high]`",
    "features.plugins": "paths (a list)",
    "features.columns": "column names (a list)",
    "search.early_stop": "`true` or `false`",
}
MEANING: dict[str, str] = {
    "study.name": "the study's name in the storage, and its journal's file name",
    "study.trials": "trained trials to reach (stopped ones count their share)",
    "study.seed": "seeds the sampler and every trial's training",
    "study.sampler": "how trials are drawn",
    "study.objectives": "what the search optimizes, on validation (a list)",
    "study.storage": "a database or `grpc://` proxy URL; empty: a journal beside the study file",
    "data.source": "the bars: a CSV or Parquet file (relative to the study file) or `sample:NAME`",
    "data.window": "bars per window the model reads",
    "data.window_step": "the step of a searched window",
    "labels.horizons": "bars ahead each label looks (a list)",
    "labels.dead_zone": "log return below which a move is flat (3 classes only)",
    "labels.classes": "2: up/down; 3: up/flat/down",
    "split.val": "share of windows for validation (all folds together)",
    "split.test": "share of the newest windows kept untouched for the export's test",
    "split.purge": "extra rows dropped at each boundary, on top of window + horizon",
    "split.folds": "walk-forward folds the validation part is cut into",
    "split.min_samples": "fewest windows any train, validation or test part may hold",
    "features.groups": "the catalog's groups searched",
    "features.names": "single features (or your own columns) searched besides the groups",
    "features.unit": "what one switch of the search turns on: a group, or one feature",
    "features.min": "fewest units a trial uses",
    "features.max": "most units a trial uses",
    "features.count": 'per group, `[low, high]` features a trial uses (unit = "feature")',
    "features.plugins": "your own feature files (Python), relative to the study file",
    "features.columns": "precomputed columns of the bars file, used as features",
    "model.families": "the model families searched",
    "train.epochs": "most epochs per fold",
    "train.max_seconds": "most seconds of training per fold (0: no limit)",
    "train.patience": "epochs without a better validation loss before a fold stops",
    "train.batch_size": "windows per step",
    "train.lr": "learning rate (log scale)",
    "train.weight_decay": "AdamW's weight decay (log scale)",
    "train.dropout": "dropout between layers and before the head",
    "train.return_weight": "weight of the return head's loss beside the direction's",
    "train.label_smoothing": "label smoothing of the direction loss",
    "train.focal_gamma": "focal loss's gamma (0: plain cross-entropy)",
    "train.schedule": "learning-rate schedule",
    "caps.max_width": "widest model: LSTM hidden, xLSTM embed",
    "caps.max_depth": "deepest model: LSTM layers, xLSTM blocks",
    "caps.max_params": "most parameters; a trial over it is not trained",
    "caps.max_latency_ms": "most ms per window on the trading PC (batch 1, one CPU thread)",
    "caps.latency_scale": "the trading PC's slowness against this machine (`xtune certify`)",
    "trading.fee": "cost per unit of position change, in log-return units",
    "trading.confident_share": "the most confident share of windows `confident_accuracy` scores",
    "search.early_stop": "stop trials that rank poorly at a rung",
}


def _keys(cls: type, section: str) -> Iterator[tuple[str, Field[Any] | None]]:
    """The keys a study file may write in ``section``, with their dataclass fields."""
    by_name = {f.name: f for f in fields(cls)}
    names = FEATURE_KEYS if section == "features" else tuple(by_name)
    for name in names:
        yield name, by_name.get(name)


def _default(f: Field[Any] | None) -> str:
    if f is None:
        return "none"
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return "required"
    return _toml(value)


def _toml(value: Any) -> str:
    """A default as a study file would write it."""
    if isinstance(value, Fixed):
        return _toml(value.value)
    if isinstance(value, IntRange | FloatRange):
        return f"`[{value.low:g}, {value.high:g}]`"
    if isinstance(value, Choice):
        return f"`{{choices = {show(list(value.options))}}}`"
    if isinstance(value, tuple) and len(value) > 4:
        return f"all {len(value)}"
    if value == () or value == "":
        return "none"
    return f"`{show(list(value) if isinstance(value, tuple) else value)}`"


def _accepts(key: str, f: Field[Any] | None, rule: KeyRule | None = None) -> str:
    """What ``key`` accepts: one of its names, a number within its rule (a range or choices of
    them where the key is a search space), or the kind of value ``TEXT`` says."""
    if key in NAMES:
        return ", ".join(f"`{n}`" for n in NAMES[key])
    searched = ", a range or choices" if f is not None and f.type == "Space" else ""
    if key in RULES:
        return RULES[key].describe() + searched
    if rule is not None:
        return Rule(*rule).describe() + searched
    return TEXT.get(key, "")


def _row(key: str, default: str, accepts: str, meaning: str | None = None) -> str:
    name = key.split(".")[-1]
    return f"| `{name}` | {default} | {accepts} | {meaning or MEANING.get(key, '')} |"


def _meaning(family: Family, name: str) -> str:
    """A family key's line: which cap bounds it, or which key it steps."""
    if name.endswith("_step"):
        return f"the step of a searched `{name.removesuffix('_step')}`"
    cap = {family.width: "`[caps] max_width` caps it", family.depth: "`[caps] max_depth` caps it"}
    return cap.get(name, "searched as written")


HEADER = "| key | default | accepts | what it is |\n|---|---|---|---|"


def reference() -> str:
    """The reference, as Markdown."""
    out = [
        "# Study file reference",
        "",
        "Every key a study file may hold, its default and what it accepts. A range is",
        "`[low, high]`, choices are `{choices = [...]}`; `lr` and `weight_decay` are sampled on a",
        "log scale. This page is generated by `python -m xtune.search.study_reference` from the",
        "tables that validate a study file, and a test checks that it is current.",
    ]
    for section, cls in SECTIONS:
        out += ["", f"## [{section}]", "", HEADER]
        out += [
            _row(f"{section}.{k}", _default(f), _accepts(f"{section}.{k}", f))
            for k, f in _keys(cls, section)
        ]
        if section == "features":
            out += _model()
    return "\n".join(out) + "\n"


def _model() -> list[str]:
    out = [
        "",
        "## [model]",
        "",
        HEADER,
        _row("model.families", _toml(BUILT_IN), _accepts("model.families", None)),
    ]
    for family in FAMILIES.values():
        out += ["", f"### [model.{family.name}]", "", HEADER]
        for f in fields(family.space):
            rule, key = family.rules.get(f.name), f"model.{family.name}.{f.name}"
            out.append(_row(key, _default(f), _accepts(key, f, rule), _meaning(family, f.name)))
    return out


if __name__ == "__main__":
    print(reference(), end="")
