"""xtune's own heartbeat, for a storage that has none of Optuna's: the storage proxy's client.

Optuna's heartbeat belongs to ``RDBStorage`` (a table stamped with the database's clock).
``GrpcStorageProxy`` does not implement ``BaseHeartbeat``, so through the proxy ``optimize``
neither beats nor fails stale trials, and a worker killed mid-trial would leave its trial
RUNNING for good. In its place, while the objective runs, a thread stamps the trial's system
attribute ``xtune:heartbeat`` with the worker's clock (seconds since the epoch) every
``heartbeat_s``; the sweep (:mod:`xtune.search._sweep`) reads it back: a RUNNING trial whose
stamp is older than ``grace_s``, or that has none and started longer ago, is orphaned.

The stamp is a worker's clock read by another machine's sweep, so the machines' clocks must
agree to well within ``grace_s`` (NTP does; the default grace is 60 s). A stamp is one small
UPDATE through the proxy: 128 workers at the default 20 s make about 6 a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

KEY = "xtune:heartbeat"


def needs_beat(storage: optuna.storages.BaseStorage) -> bool:
    """Whether trials on ``storage`` need xtune's heartbeat (they have no other)."""
    from optuna.storages import GrpcStorageProxy

    return isinstance(storage, GrpcStorageProxy)


class Heartbeat:
    """Stamps the running trial's heartbeat from a thread while the wrapped objective runs."""

    def __init__(self, storage: optuna.storages.BaseStorage, interval_s: float) -> None:
        self.storage, self.interval_s = storage, interval_s

    def wrap(
        self, objective: Callable[[optuna.Trial], tuple[float, ...]]
    ) -> Callable[[optuna.Trial], tuple[float, ...]]:
        def run(trial: optuna.Trial) -> tuple[float, ...]:
            stop = threading.Event()
            beating = threading.Thread(
                target=self._beat, args=(trial._trial_id, stop), name="xtune-heartbeat", daemon=True
            )
            beating.start()
            try:
                return objective(trial)
            finally:
                stop.set()
                beating.join()

        return run

    def _beat(self, trial_id: int, stop: threading.Event) -> None:
        """Stamp until ``stop``; a failed stamp (the proxy or its database away) is retried at
        the next beat, as Optuna's own heartbeat is not (it ends at its first failure)."""
        while True:
            try:
                self.storage.set_trial_system_attr(trial_id, KEY, time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # swept meanwhile: its owner learns it when it stores the result
            except Exception as exc:
                logging.getLogger("xtune").warning(
                    "heartbeat of trial id %d not stored (%s); trying again",
                    trial_id,
                    type(exc).__name__,
                )
            if stop.wait(self.interval_s):
                return


def beat_age(trial: FrozenTrial, now: float | None = None) -> float | None:
    """Seconds since the trial's last heartbeat; None where it never sent one."""
    stamp = trial.system_attrs.get(KEY)
    if not isinstance(stamp, int | float):
        return None
    return (time.time() if now is None else now) - float(stamp)
