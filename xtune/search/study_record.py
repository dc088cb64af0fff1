"""What a study records about itself in Optuna's study user attributes (``xtune/*``): what it
was created with (:class:`StudyRecord`) and the parameter space it searches. The study-level
twin of :mod:`xtune.search.record`; no other module spells these keys."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution

from xtune.errors import XtuneError


@dataclass(frozen=True)
class StudyRecord:
    """What a study was created with: its objectives in order, caps, budget, the bars it
    searches (their hash) and the seed of its first worker. A later run of the same study is
    checked against it: other objectives are refused, other bars need an explicit flag."""

    objectives: tuple[str, ...]
    caps: dict[str, Any]
    budget: int
    data_sha256: str
    data_source: str
    seed: int

    def to_attrs(self) -> dict[str, Any]:
        # Objectives last: once they are there, the whole record is.
        a = {f"xtune/{f.name}": getattr(self, f.name) for f in fields(StudyRecord)}
        del a["xtune/objectives"]
        return a | {"xtune/objectives": list(self.objectives)}

    @classmethod
    def from_attrs(cls, a: dict[str, Any]) -> StudyRecord | None:
        """None while the record is not (fully) written yet.

        Raises:
            XtuneError: the study was created by an older xtune that recorded less.
        """
        if "xtune/objectives" not in a:
            return None
        missing = [f.name for f in fields(StudyRecord) if f"xtune/{f.name}" not in a]
        if missing:
            raise XtuneError(
                f"this study was created by an older xtune (it does not record {', '.join(missing)}); "
                "give the study a new name in the study file, or keep using that xtune version."
            )
        record = cls(**{f.name: a[f"xtune/{f.name}"] for f in fields(StudyRecord)})
        return replace(record, objectives=tuple(record.objectives))


def write_study(study: optuna.Study, record: StudyRecord) -> None:
    for key, value in record.to_attrs().items():
        study.set_user_attr(key, value)


def read_study(study: optuna.Study) -> StudyRecord | None:
    return StudyRecord.from_attrs(study.user_attrs)


_SPACE = "xtune/space"


def write_space(study: optuna.Study, space: dict[str, BaseDistribution]) -> None:
    """Record the parameter space the study searches (its latest ``xtune search``), unless
    it is recorded already: setups queued later are checked against it."""
    if read_space(study) != space:
        study.set_user_attr(_SPACE, {n: distribution_to_json(d) for n, d in space.items()})


def read_space(study: optuna.Study) -> dict[str, BaseDistribution] | None:
    """The recorded space; None for a study that has none recorded."""
    raw = study.user_attrs.get(_SPACE)
    return None if raw is None else {n: json_to_distribution(d) for n, d in raw.items()}
