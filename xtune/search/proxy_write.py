"""The storage proxy's writes of a running trial's parameters and attributes: one SQL statement
each on PostgreSQL.

A trial stores about 30 of these (each parameter the sampler draws, each field of xtune's
records, its heartbeats), and through the proxy every worker's writes are served by one Python
process. Optuna's database storage writes each through its ORM: a session, the trial loaded
as an object to check that it is not finished, the write, the commit. Here the check and the
write are one statement, ``INSERT ... SELECT`` from the trial's row if it is unfinished, with
Optuna's rules and errors:

- an attribute is inserted or replaced (upsert on its trial and key);
- a parameter already stored for the trial is left as it is, as Optuna ignores the duplicate;
- a trial that does not exist raises ``KeyError``, a finished one
  ``UpdateFinishedTrialError`` (the gRPC service answers NOT_FOUND and FAILED_PRECONDITION);
- any other database error raises ``StorageInternalError``, as Optuna's session does.

Other databases keep Optuna's own writes (:class:`~xtune.search.proxy_cache.ProxyCache` only
uses these on PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from optuna import distributions
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages._rdb import models

UNFINISHED = ("RUNNING", "WAITING")  # the states Optuna lets a trial's fields change in
TRIALS = models.TrialModel.__tablename__
USER = models.TrialUserAttributeModel.__tablename__
SYSTEM = models.TrialSystemAttributeModel.__tablename__
PARAMS = models.TrialParamModel.__tablename__
_UPDATABLE = f"state IN ({', '.join(repr(state) for state in UNFINISHED)})"


def _attribute_sql(table: str) -> sqlalchemy.TextClause:
    return sqlalchemy.text(
        f"INSERT INTO {table} (trial_id, key, value_json) "
        f"SELECT trial_id, :key, :value FROM {TRIALS} "
        f"WHERE trial_id = :trial_id AND {_UPDATABLE} "
        "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json "
        "RETURNING trial_id"
    )


_ATTRIBUTE = {USER: _attribute_sql(USER), SYSTEM: _attribute_sql(SYSTEM)}
_PARAM = sqlalchemy.text(
    f"INSERT INTO {PARAMS} (trial_id, param_name, param_value, distribution_json) "
    f"SELECT trial_id, :name, :value, :distribution FROM {TRIALS} "
    f"WHERE trial_id = :trial_id AND {_UPDATABLE} "
    "ON CONFLICT (trial_id, param_name) DO NOTHING "
    "RETURNING trial_id"
)
_STATE = sqlalchemy.text(f"SELECT state, number FROM {TRIALS} WHERE trial_id = :trial_id")


def set_attribute(
    engine: sqlalchemy.Engine, table: str, trial_id: int, key: str, value: Any
) -> None:
    """Store ``key = value`` in ``table`` (:data:`USER` or :data:`SYSTEM`) for the trial."""
    values = {"trial_id": trial_id, "key": key, "value": json.dumps(value)}
    _write(engine, _ATTRIBUTE[table], values, duplicate_ok=False)


def set_param(
    engine: sqlalchemy.Engine,
    trial_id: int,
    name: str,
    value: float,
    distribution: distributions.BaseDistribution,
    known: distributions.BaseDistribution,
) -> None:
    """Store the parameter for the trial; ``known`` is the study's distribution of ``name``.

    Raises:
        ValueError: ``distribution`` is not compatible with ``known``.
    """
    try:
        distributions.check_distribution_compatibility(known, distribution)
    except ValueError:
        # a missing or finished trial says so first, as in Optuna
        with _refusals(), engine.connect() as connection:
            _check_updatable(connection, trial_id)
        raise
    values = {
        "trial_id": trial_id,
        "name": name,
        "value": value,
        "distribution": distributions.distribution_to_json(distribution),
    }
    _write(engine, _PARAM, values, duplicate_ok=True)


def _write(
    engine: sqlalchemy.Engine,
    statement: sqlalchemy.TextClause,
    values: dict[str, Any],
    *,
    duplicate_ok: bool,
) -> None:
    """Run ``statement`` in its own transaction; if it wrote nothing, say why as Optuna does."""
    with _refusals(), engine.begin() as connection:
        if connection.execute(statement, values).first():
            return
        _check_updatable(connection, values["trial_id"])
    if not duplicate_ok:  # an unfinished trial's upsert always writes
        raise StorageInternalError(f"the write to trial {values['trial_id']} stored nothing")


def _check_updatable(connection: sqlalchemy.Connection, trial_id: int) -> None:
    """Raise Optuna's error for a trial that does not exist or has finished."""
    row = connection.execute(_STATE, {"trial_id": trial_id}).first()
    if row is None:
        raise KeyError(models.NOT_FOUND_MSG)
    if row.state not in UNFINISHED:
        raise UpdateFinishedTrialError(
            f"Trial#{row.number} has already finished and can not be updated."
        )


@contextmanager
def _refusals() -> Iterator[None]:
    """The database away passes as it is (the proxy answers UNAVAILABLE); any other database
    error becomes ``StorageInternalError``, as in Optuna's session."""
    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError):
        raise
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StorageInternalError(f"the write was refused: {type(exc).__name__}") from exc
