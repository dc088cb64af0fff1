"""Seeding a study with the trader's own setups: ``[[enqueue]]`` entries in the study file, or
``xtune enqueue STUDY.toml PARAMS.json``, queue them as the study's first trials.

An entry, in TOML (a JSON file holds one such object, or a list of them)::

    [[enqueue]]
    label = "live model A"
    features = ["ret_1", "rsi_14", "cdl_doji"]
    parameters = {family = "lstm", "lstm/hidden" = 32, "lstm/layers" = 1, lr = 0.003}

``parameters`` uses the study's own names, as ``xtune status --format json`` prints each front
trial's ``"parameters"``; any left out are drawn by the sampler. ``features`` lists the
features (or, with ``unit = "group"``, the groups) switched on, translated to the feature
parameters. Every entry is checked against the space the study draws from, before anything is
stored: an unknown name (with the closest ones), a value outside the study's ranges or beyond
the hard caps, a feature count outside ``[features]``. A setup already in the study (the same
parameters) is not queued again, so a search can be re-run.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from xtune.errors import Invalid, SeedError
from xtune.features.catalog import GROUPS
from xtune.search._validate import show
from xtune.search.record import TrialRecord
from xtune.search.sections import EnqueueEntry, FeatureSection, StudyConfig
from xtune.search.space import feature_params, is_feature_param, parameter_space, unit_bounds
from xtune.search.study_record import read_space, read_study

_KEYS = ("label", "features", "parameters")


@dataclass(frozen=True)
class Spaces:
    """What a setup is checked against: ``study``, the space the study in storage searches
    (recorded by its latest ``xtune search``; the file's where none is recorded), and, for
    the messages, the study file's own space under its caps and before them."""

    study: dict[str, BaseDistribution]
    file: dict[str, BaseDistribution]
    uncapped: dict[str, BaseDistribution]

    @classmethod
    def of(cls, config: StudyConfig, study: optuna.Study | None = None) -> Spaces:
        """The spaces of ``study`` as searched, after checking that ``config`` is a file
        with its objectives.

        Raises:
            SeedError: the study was created with other objectives than the file names.
        """
        file = parameter_space(config)
        if study is None:
            return cls(file, file, parameter_space(config, capped=False))
        record = read_study(study)
        if record is not None and record.objectives != config.study.objectives:
            raise SeedError(
                f"{config.path}: study '{config.study.name}' was created with objectives "
                f"{list(record.objectives)}, this file asks for {list(config.study.objectives)}; "
                "it is not the file the study is searched with. Queue setups with that file."
            )
        return cls(read_space(study) or file, file, parameter_space(config, capped=False))


def entries(
    raw: Any, config: StudyConfig, where: str, name: str = "", spaces: Spaces | None = None
) -> tuple[EnqueueEntry, ...]:
    """The checked entries of ``raw`` (a list of tables). ``where`` starts each message
    (``[[enqueue]]``); an entry without a label is called ``<name> #<i>``. Values are checked
    against ``spaces`` (default: the study file's own); a whole number written as ``16.0``
    comes back as ``16``.

    Raises:
        Invalid: one line naming the entry (number and label), the key and what to write.
    """
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise Invalid(f"{where} must be a list of tables with {', '.join(_KEYS)}.")
    spaces = spaces or Spaces.of(config)
    out: list[EnqueueEntry] = []
    for i, item in enumerate(raw, 1):
        label = item.get("label")
        at = f'{where} #{i} "{label}"' if isinstance(label, str) and label else f"{where} #{i}"
        entry = _entry(item, at, f"{name or config.path.name} #{i}")
        if entry.label in {e.label for e in out}:
            raise Invalid(f"{at}: label used twice; give each entry its own label.")
        out.append(_checked(entry, config, spaces, at))
    return tuple(out)


def _entry(item: dict[str, Any], at: str, default: str) -> EnqueueEntry:
    for key in item:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"keys are {', '.join(_KEYS)}."
            raise Invalid(f"{at}: unknown key '{key}'; {hint}")
    label = item.get("label", default)
    if not isinstance(label, str) or not label.strip() or any(ord(c) < 32 for c in label):
        raise Invalid(f'{at}: label = {show(label)}: write a short text, e.g. label = "live A".')
    features = item.get("features")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) for f in features)
    ):
        raise Invalid(f'{at}: features = {show(features)}: write a list, e.g. ["ret_1", "rsi_14"].')
    params = item.get("parameters", {})
    if not isinstance(params, dict):
        raise Invalid(f"{at}: parameters = {show(params)}: write a table, e.g. {{lr = 0.003}}.")
    if not params and features is None:
        raise Invalid(f"{at}: nothing to queue; give parameters = {{...}} and/or features = [...].")
    return EnqueueEntry(label, dict(params), None if features is None else tuple(features))


def _checked(entry: EnqueueEntry, config: StudyConfig, spaces: Spaces, at: str) -> EnqueueEntry:
    params = {n: _value(n, v, config, spaces, at) for n, v in entry.parameters.items()}
    if entry.features is None:
        _check_switches(params, config.features, at)
        return EnqueueEntry(entry.label, params, None)
    units = _units(entry.features, config.features, at)
    clash = sorted(set(feature_params(config.features, units)) & set(params))
    if clash:
        raise Invalid(
            f"{at}: features and parameters.{json.dumps(clash[0])} both set the "
            "features; give them one way only."
        )
    _check_counts(units, config.features, at)
    _check_switched(feature_params(config.features, units), config, spaces.study, at)
    return EnqueueEntry(entry.label, params, units)


def _value(name: str, value: Any, config: StudyConfig, spaces: Spaces, at: str) -> Any:
    """``value`` as the study draws it, or one line saying what to write instead."""
    key = f"parameters.{json.dumps(name) if '/' in name else name} = {show(value)}"
    space, file = spaces.study, config.path.name
    if name not in space:
        if name in spaces.file:
            raise Invalid(
                f"{at}: {key}: not a parameter of the study in storage; it is "
                f"searched with another file than {file}: queue setups with that one."
            )
        close = difflib.get_close_matches(name, list(space), n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else '`xtune status --format json` prints the parameters of trials ("parameters").'
        )
        raise Invalid(
            f"{at}: {key}: not a parameter of this study (a misspelling, or a "
            f"value the study file fixes); {hint}"
        )
    dist = space[name]
    problem = _problem(dist, value)
    if problem is None:
        return _as_drawn(dist, value)
    uncapped = spaces.uncapped.get(name)
    if spaces.file.get(name) == dist and uncapped and _problem(uncapped, value) is None:
        caps = config.caps
        raise Invalid(
            f"{at}: {key}: beyond the hard caps ([caps] max_width = "
            f"{caps.max_width}, max_depth = {caps.max_depth}); write "
            f"{_describe(dist)}."
        )
    other = spaces.file.get(name)
    differs = ""
    if other not in (None, dist):
        differs = (
            f" {file} says {_describe(other)}, but the study in storage is searched with "
            "another file; queue setups with that one."
        )
    raise Invalid(f"{at}: {key}: {problem}; write {_describe(dist)}.{differs}")


def _as_drawn(dist: BaseDistribution, value: Any) -> Any:
    """The value as the study's own draws hold it: ``16`` for ``16.0``, the choice itself."""
    if isinstance(dist, IntDistribution):
        return int(value)
    if isinstance(dist, CategoricalDistribution):
        return next(c for c in dist.choices if c == value)
    return value


def _check_switches(params: dict[str, Any], f: FeatureSection, at: str) -> None:
    """Feature switches set in ``parameters`` must leave a feature count ``[features]``
    allows, the switches left out drawn either way (all off is refused, as ``features = []``)."""
    low, high = unit_bounds(f, params)
    few = high < f.min
    if few or low > f.max:
        n = str(low) if low == high else f"at most {high}" if few else f"at least {low}"
        raise Invalid(
            f"{at}: parameters switch {n} {f.unit}(s) on, but [features] asks for "
            f"min = {f.min} to max = {f.max}; switch {'more on' if few else 'some off'}."
        )


def _check_switched(
    switched: dict[str, Any], config: StudyConfig, space: dict[str, BaseDistribution], at: str
) -> None:
    """``features`` sets every feature parameter of the study as searched, each to a value
    it can draw: otherwise the study file is not the one the study is searched with."""
    searched = {n for n in space if is_feature_param(n)}
    odd = sorted(
        (searched ^ set(switched))
        | {n for n in switched if n in space and _problem(space[n], switched[n])}
    )
    if odd:
        raise Invalid(
            f"{at}: features: the study in storage switches its features otherwise "
            f"than {config.path.name} does ({json.dumps(odd[0])}); it is searched with "
            "another file: queue setups with that one."
        )


def _units(names: tuple[str, ...], f: FeatureSection, at: str) -> tuple[str, ...]:
    """The study's switch units that ``names`` turn on (a group name: all its features)."""
    on: set[str] = set()
    known = f.feature_set
    for n in names:
        if n in f.units:
            on.add(n)
        elif n in GROUPS and f.unit == "feature" and f.members(n):
            on.update(f.members(n))
        elif n in known and f.unit == "group" and known[n].group in f.units:
            raise Invalid(
                f'{at}: features: "{n}": with [features] unit = "group" its group is '
                f'on or off whole; list "{known[n].group}", or set unit = "feature".'
            )
        elif n in GROUPS:
            raise Invalid(
                f'{at}: features: this study searches no feature of group "{n}"; add '
                "it to [features] groups, or leave it out."
            )
        elif n in known:
            raise Invalid(
                f'{at}: features: "{n}" is not searched by this study; add it to '
                f'[features] names, or "{known[n].group}" to groups.'
            )
        else:
            close = difflib.get_close_matches(n, [*f.units, *GROUPS], n=3)
            hint = (
                f"did you mean {', '.join(repr(c) for c in close)}?"
                if close
                else "run `xtune features list`."
            )
            raise Invalid(f'{at}: features: "{n}" is not a feature; {hint}')
    return tuple(u for u in f.units if u in on)


def _check_counts(units: tuple[str, ...], f: FeatureSection, at: str) -> None:
    for c in f.count:
        n = sum(1 for u in f.members(c.group) if u in units)
        if not c.low <= n <= c.high:
            raise Invalid(
                f"{at}: features: {n} {c.group} feature(s), but [features.count] "
                f"{c.group} = [{c.low}, {c.high}]; list that many."
            )
    if not f.min <= len(units) <= f.max:
        raise Invalid(
            f"{at}: features: {len(units)} {f.unit}(s) on, but [features] asks for "
            f"min = {f.min} to max = {f.max}."
        )


def _problem(dist: BaseDistribution, value: Any) -> str | None:
    """Why ``value`` is not one ``dist`` can draw, or None. A bool is not a number."""
    if isinstance(dist, CategoricalDistribution):
        ok = any(
            value == c and isinstance(value, bool) == isinstance(c, bool) for c in dist.choices
        )
        return None if ok else "not one of the study's choices"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "not a number"
    assert isinstance(dist, IntDistribution | FloatDistribution)
    if isinstance(dist, IntDistribution) and not (isinstance(value, int) or value.is_integer()):
        return "not a whole number"
    if not dist.low <= value <= dist.high:
        return "outside the study's range"
    if isinstance(dist, IntDistribution) and (value - dist.low) % dist.step:
        return f"off the study's step of {dist.step}"
    return None


def _describe(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"one of {show(list(dist.choices))}"
    assert isinstance(dist, IntDistribution | FloatDistribution)
    if isinstance(dist, IntDistribution):
        step = f" in steps of {dist.step}" if dist.step > 1 else ""
        return f"a whole number in [{dist.low}, {dist.high}]{step}"
    return f"a number in [{dist.low:g}, {dist.high:g}]"


def load_entries(
    path: Path, config: StudyConfig, study: optuna.Study | None = None
) -> tuple[EnqueueEntry, ...]:
    """The checked entries of a JSON file (one object, or a list of them), against the space
    ``study`` is searched in (see :class:`Spaces`).

    Raises:
        SeedError: naming the file, the entry and the key.
    """
    spaces = Spaces.of(config, study)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeedError(f"{path}: file not found.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SeedError(f"{path}: not valid JSON: {exc}") from None
    try:
        return entries([raw] if isinstance(raw, dict) else raw, config, "entry", path.name, spaces)
    except Invalid as exc:
        raise SeedError(f"{path}: {exc}") from None


def enqueue(study: optuna.Study, config: StudyConfig, entry: EnqueueEntry) -> bool:
    """Check one setup against the space the study is searched in (see :class:`Spaces`) and
    queue it, unless the study holds it already (the same parameters, in any state). Returns
    whether it was queued.

    Raises:
        SeedError: the setup does not fit the study (names the key).
    """
    spaces = Spaces.of(config, study)
    try:
        (entry,) = entries([_raw(entry)], config, "enqueue", entry.label, spaces)
    except Invalid as exc:
        raise SeedError(str(exc)) from None
    params = dict(entry.parameters)
    if entry.features is not None:
        params |= feature_params(config.features, entry.features)
    before = len(study.get_trials(deepcopy=False))
    label = TrialRecord(label=entry.label).to_attrs()
    study.enqueue_trial(params, user_attrs=label, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) > before


def _raw(entry: EnqueueEntry) -> dict[str, Any]:
    raw: dict[str, Any] = {"label": entry.label, "parameters": entry.parameters}
    return raw if entry.features is None else raw | {"features": list(entry.features)}


def seed_study(study: optuna.Study, config: StudyConfig) -> list[tuple[str, bool]]:
    """Queue the study file's ``[[enqueue]]`` entries not in the study yet, in file order:
    (label, queued now) per entry."""
    return [(e.label, enqueue(study, config, e)) for e in config.enqueue]
