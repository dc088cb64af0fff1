"""The storage proxy's trial cache: Optuna's, minus its one lock held across database calls.

Optuna's ``_CachedStorage`` (what ``get_storage`` wraps an ``RDBStorage`` in) reads finished
trials once and every unfinished trial again on each ``get_all_trials``, all under one lock
that every other cached call takes too. In one worker process that lock is uncontended. In
the proxy every worker's reads land on it: each read re-reads every RUNNING trial (the
parameters and attributes of 128 of them at 128 workers), and the calls behind it (each
``suggest`` of every worker stores a parameter under the same lock) queue for seconds.

:class:`ProxyCache` keeps Optuna's cache and its rules (finished trials are read once, the
unfinished ones on every read) and changes these things:

- The database is read and written outside the lock; the lock only guards the cache's dicts.
- Reads of one study are coalesced: one read runs at a time, and a call that arrives while one
  runs waits for the next one, which starts after it arrived, so it still sees every write
  stored before it asked. At any load, a study costs one read at a time, not one per caller
  (:class:`~xtune.search.proxy_create.Batched`, which also batches the creations).
- A read fetches rows, not ORM objects (:mod:`xtune.search.proxy_read`), and hands back an
  unchanged trial as the object it handed back before.
- New trials of a study are created in batches (:mod:`xtune.search.proxy_create`).
- On PostgreSQL a parameter or an attribute is written by one statement
  (:mod:`xtune.search.proxy_write`).
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

from optuna import distributions
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
from optuna.trial import FrozenTrial

from xtune.search.proxy_create import Batched, create_trials
from xtune.search.proxy_read import TrialReader
from xtune.search.proxy_write import SYSTEM, USER, set_attribute, set_param


class ProxyCache(_CachedStorage):
    """Optuna's trial cache over ``backend`` whose database calls run outside its lock, with
    the reads of a study coalesced (see the module's docstring)."""

    def __init__(self, backend: RDBStorage) -> None:
        super().__init__(backend)
        self._reads: dict[int, Batched[None]] = {}  # one read at a time serves every caller
        self._creates: dict[int, Batched[FrozenTrial]] = {}
        # writes as single statements (:mod:`xtune.search.proxy_write`) on PostgreSQL
        self._statements = backend.engine.dialect.name == "postgresql"

    def batches(self, study_id: int) -> int:
        """Batches of new trials created in the study so far."""
        with self._lock:
            return self._creates[study_id].batches if study_id in self._creates else 0

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        """A new RUNNING trial, created in a batch with those asked for meanwhile; a trial
        from a template (an enqueued or added one) is created alone, as by Optuna."""
        if template_trial is not None:
            return super().create_new_trial(study_id, template_trial)
        with self._lock:
            creates = self._creates.get(study_id)
            if creates is None:
                make = partial(create_trials, self._backend, study_id)
                creates = self._creates[study_id] = Batched(make)
        trial = creates.call()
        with self._lock:
            self._studies.setdefault(study_id, _StudyInfo())
            self._add_trials_to_cache(study_id, [trial])
        return trial._trial_id

    def reads(self, study_id: int) -> int:
        """Database reads of the study's trials so far."""
        with self._lock:
            return self._reads[study_id].batches if study_id in self._reads else 0

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        with self._lock:
            reads = self._reads.get(study_id)
            if reads is None:
                make = partial(self._read_for, study_id, TrialReader())
                reads = self._reads[study_id] = Batched(make, limit=sys.maxsize)
        reads.call()

    def _read_for(self, study_id: int, reader: TrialReader, callers: int) -> list[None]:
        """One read that serves ``callers`` callers."""
        self._read(study_id, reader)
        return [None] * callers

    def _read(self, study_id: int, reader: TrialReader) -> None:
        """One read of the study's unfinished and new trials into the cache, as Optuna's."""
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyInfo())
            unfinished, last = set(study.unfinished_trial_ids), study.last_finished_trial_id
        trials = reader.read(self._backend.engine, study_id, unfinished, last)
        with self._lock:
            if self._studies.get(study_id) is not study:  # deleted meanwhile
                return
            self._add_trials_to_cache(study_id, trials)
            for trial in trials:
                if not trial.state.is_finished():
                    study.unfinished_trial_ids.add(trial._trial_id)
                    continue
                study.last_finished_trial_id = max(study.last_finished_trial_id, trial._trial_id)
                study.unfinished_trial_ids.discard(trial._trial_id)

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: distributions.BaseDistribution,
    ) -> None:
        with self._lock:
            study_id, _ = self._trial_id_to_study_id_and_number[trial_id]
            known = self._studies[study_id].param_distribution.get(param_name)
        if known is not None and self._statements:
            set_param(
                self._backend.engine,
                trial_id,
                param_name,
                param_value_internal,
                distribution,
                known,
            )
        else:  # the study's first draw of this parameter: Optuna checks it against the stored
            self._backend._set_trial_param(
                trial_id, param_name, param_value_internal, distribution, known
            )
        with self._lock:
            if study_id in self._studies:
                self._studies[study_id].param_distribution.setdefault(param_name, distribution)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._statements:
            set_attribute(self._backend.engine, USER, trial_id, key, value)
        else:
            super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._statements:
            set_attribute(self._backend.engine, SYSTEM, trial_id, key, value)
        else:
            super().set_trial_system_attr(trial_id, key, value)

    def delete_study(self, study_id: int) -> None:
        super().delete_study(study_id)
        with self._lock:
            self._reads.pop(study_id, None)
            self._creates.pop(study_id, None)
