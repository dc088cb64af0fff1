"""The storage proxy's trial creation: the new trials of one study created in batches.

Optuna creates a trial under a lock on its study's row (the trial's number is a count of the
trials before it), so creations of one study run one at a time, each holding a pooled
connection while it waits for the lock. When every worker asks for a trial at once (128
workers started together), the creations queue behind each other and hold the pool from the
other calls. Here the creations that arrive while one is under way wait for it and are then
made together, in one transaction under one lock of the study row, numbered as Optuna numbers
them: by trial id, after the trials already in the study.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState

T = TypeVar("T")
MAX_BATCH = 256  # trials created in one transaction at most
RETRIES = 5  # as Optuna's own creation: a deadlock in a busy database is retried


class _Slot(Generic[T]):
    """One caller's place in a batch: its result or the batch's error, once done."""

    def __init__(self) -> None:
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class Batched(Generic[T]):
    """Runs ``make(n)`` for callers in batches: callers that arrive while a batch is under way
    are served together by the next one (up to ``limit``), each with one of its results, so
    every caller is served by a batch that started after it asked; a batch that raised raises
    in each of its callers."""

    def __init__(self, make: Callable[[int], list[T]], limit: int = MAX_BATCH) -> None:
        self._make, self._limit = make, limit
        self._turn = threading.Condition()
        self._waiting: list[_Slot[T]] = []
        self._busy = False
        self.batches = 0  # batches started so far

    def call(self) -> T:
        slot: _Slot[T] = _Slot()
        with self._turn:
            self._waiting.append(slot)
            while not slot.done:
                if self._busy:
                    self._turn.wait()
                    continue
                batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
                self._run(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _run(self, batch: list[_Slot[T]]) -> None:
        """Make ``batch``'s results without holding the turn (called with it held)."""
        self._busy, self.batches = True, self.batches + 1
        self._turn.release()
        results: list[T] = []
        error: BaseException | None = None
        try:
            results = self._make(len(batch))
        except BaseException as exc:  # handed to every caller of this batch, then raised
            error = exc
        finally:
            self._turn.acquire()
        for k, slot in enumerate(batch):
            slot.done, slot.error = True, error
            slot.result = results[k] if error is None else None
        self._busy = False
        self._turn.notify_all()


def create_trials(database: RDBStorage, study_id: int, n: int) -> list[FrozenTrial]:
    """``n`` new RUNNING trials of the study, in one transaction under the study row's lock,
    numbered by trial id after the trials before them, as Optuna's ``create_new_trial``.

    Raises:
        KeyError: no study has ``study_id``.
    """
    for attempt in range(1, RETRIES + 1):
        try:
            return _create(database, study_id, n)
        except StorageInternalError:
            if attempt == RETRIES:
                raise
            time.sleep(random.random() * 2.0)
    raise AssertionError("not reached")


def _create(database: RDBStorage, study_id: int, n: int) -> list[FrozenTrial]:
    with _create_scoped_session(database.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        rows = [
            models.TrialModel(
                study_id=study_id,
                number=None,
                state=TrialState.RUNNING,
                datetime_start=datetime.now(),
            )
            for _ in range(n)
        ]
        session.add_all(rows)
        session.flush()
        rows.sort(key=lambda row: row.trial_id)
        before = rows[0].count_past_trials(session)
        for k, row in enumerate(rows):
            row.number = before + k
        session.flush()
        return [_frozen(row) for row in rows]


def _frozen(row: models.TrialModel) -> FrozenTrial:
    return FrozenTrial(
        number=row.number,
        state=row.state,
        value=None,
        values=None,
        datetime_start=row.datetime_start,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=row.trial_id,
    )
