"""The storage proxy's read of a study's trials: Optuna's tables read as rows, not ORM objects.

The proxy's one costly call is the read of every unfinished trial (:mod:`xtune.search.proxy_cache`).
Optuna's ``RDBStorage._get_trials`` builds an ORM object per row of six tables (at 128 RUNNING
trials about 3,700 of them per read) before it builds the trials; most of a read's time goes
there. :class:`TrialReader` runs the same query as plain rows and builds the same
``FrozenTrial`` objects (a test compares them with Optuna's own, trial by trial). A trial
whose rows have not changed since the last read is handed back as the same object, so what
the proxy derives from it (its protobuf message) is derived once.

The trial's own row is read before the rows of its parameters and attributes, so a trial read
as finished comes with everything written before it finished (Optuna stores those first).
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from optuna import distributions
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial

NOT_FOUND = "Record does not exist."  # what Optuna's storages raise KeyError with

_TRIALS = models.TrialModel.__table__
# Each child table: its columns after trial_id, in the order of its primary key.
_CHILDREN: dict[str, tuple[Any, tuple[str, ...]]] = {
    "params": (
        models.TrialParamModel.__table__,
        ("param_name", "param_value", "distribution_json"),
    ),
    "values": (models.TrialValueModel.__table__, ("objective", "value", "value_type")),
    "user": (models.TrialUserAttributeModel.__table__, ("key", "value_json")),
    "system": (models.TrialSystemAttributeModel.__table__, ("key", "value_json")),
    "steps": (
        models.TrialIntermediateValueModel.__table__,
        ("step", "intermediate_value", "intermediate_value_type"),
    ),
}


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> distributions.BaseDistribution:
    """A study has few distinct distributions; each is parsed once."""
    return distributions.json_to_distribution(text)


def _local(utc: datetime.datetime | None) -> datetime.datetime | None:
    """Optuna stores naive UTC and hands out naive local time (``TrialModel.datetime_start``)."""
    if utc is None:
        return None
    return utc.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)


def _where(study_id: int, included: set[int], after: int) -> Any:
    """The trials ``RDBStorage._get_trials`` reads: those above ``after``, and the ``included``
    ones at or below it."""
    included = {i for i in included if i <= after}
    where = _TRIALS.c.study_id == study_id
    if after > -1 and included:
        return sa.and_(where, sa.or_(_TRIALS.c.trial_id.in_(included), _TRIALS.c.trial_id > after))
    return sa.and_(where, _TRIALS.c.trial_id > after) if after > -1 else where


class TrialReader:
    """Reads one study's trials, keeping the last rows and trial of each unfinished one."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[tuple[Any, ...], FrozenTrial]] = {}

    def read(
        self, engine: sa.Engine, study_id: int, included: set[int], after: int
    ) -> list[FrozenTrial]:
        """The trials above trial id ``after`` and the ``included`` ones, by trial id.

        Raises:
            KeyError: no such study.
        """
        where = _where(study_id, included, after)
        with engine.connect() as connection:
            found = connection.execute(
                sa.select(models.StudyModel.__table__.c.study_id).where(
                    models.StudyModel.__table__.c.study_id == study_id
                )
            ).first()
            if found is None:
                raise KeyError(NOT_FOUND)
            rows = connection.execute(
                sa.select(
                    _TRIALS.c.trial_id,
                    _TRIALS.c.number,
                    _TRIALS.c.state,
                    _TRIALS.c.datetime_start,
                    _TRIALS.c.datetime_complete,
                )
                .where(where)
                .order_by(_TRIALS.c.trial_id)
            ).all()
            ids = sa.select(_TRIALS.c.trial_id).where(where).scalar_subquery()
            children = {
                name: _rows(connection, table, columns, ids)
                for name, (table, columns) in _CHILDREN.items()
            }
        return [self._trial(tuple(row), children) for row in rows]

    def _trial(
        self, row: tuple[Any, ...], children: dict[str, dict[int, list[Any]]]
    ) -> FrozenTrial:
        trial_id = row[0]
        parts = tuple(tuple(children[name].get(trial_id, ())) for name in _CHILDREN)
        rows = (row, parts)
        last = self._last.pop(trial_id, None)
        trial = last[1] if last is not None and last[0] == rows else _build(row, *parts)
        if not trial.state.is_finished():  # read again next time; a finished one never is
            self._last[trial_id] = (rows, trial)
        return trial


def _rows(
    connection: sa.Connection, table: Any, columns: Iterable[str], ids: Any
) -> dict[int, list[Any]]:
    """``table``'s rows of the trials ``ids`` selects: trial id -> rows, in primary key order."""
    (key,) = table.primary_key.columns
    query = (
        sa.select(table.c.trial_id, *(table.c[c] for c in columns))
        .where(table.c.trial_id.in_(ids))
        .order_by(key)
    )
    by_trial: dict[int, list[Any]] = {}
    for trial_id, *rest in connection.execute(query):
        by_trial.setdefault(trial_id, []).append(tuple(rest))
    return by_trial


def _build(
    row: tuple[Any, ...],
    params: tuple[Any, ...],
    values: tuple[Any, ...],
    user: tuple[Any, ...],
    system: tuple[Any, ...],
    steps: tuple[Any, ...],
) -> FrozenTrial:
    """The trial as ``RDBStorage._build_frozen_trial_from_trial_model`` builds it."""
    trial_id, number, state, start, complete = row
    objectives: list[float] | None = None
    if values:
        objectives = [0.0] * len(values)
        for objective, value, kind in values:
            objectives[objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
    to_value = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        values=objectives,
        datetime_start=_local(start),
        datetime_complete=_local(complete),
        params={name: _distribution(d).to_external_repr(v) for name, v, d in params},
        distributions={name: _distribution(d) for name, _, d in params},
        user_attrs={key: json.loads(text) for key, text in user},
        system_attrs={key: json.loads(text) for key, text in system},
        intermediate_values={step: to_value(v, kind) for step, v, kind in steps},
        trial_id=trial_id,
    )
