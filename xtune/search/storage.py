"""Where studies live: an embedded journal file by default, PostgreSQL for many machines.

Resolution order: ``--storage``, then ``$XTUNE_STORAGE``, then the study file's ``storage``,
then ``<study name>.journal`` beside the study file. The journal backend, unlike SQLite, never
hands one queued trial to two processes, so ``--workers K`` is safe on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from xtune.errors import XtuneError
from xtune.search.config import StudyConfig


class StorageError(XtuneError):
    """The storage cannot be reached or opened; the message hides passwords."""


def resolve_storage(config: StudyConfig, override: str | None = None) -> str:
    """The storage URL (or journal file path) this study uses."""
    return (
        override
        or os.environ.get("XTUNE_STORAGE")
        or config.study.storage
        or str(config.default_storage_path)
    )


def is_database(url: str) -> bool:
    return "://" in url


def mask(url: str) -> str:
    """The URL with any password replaced by ***, safe to print and log."""
    if not is_database(url):
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: hide everything between :// and @
        head, _, tail = url.partition("://")
        return f"{head}://***@{tail.rpartition('@')[2]}" if "@" in tail else url


def open_storage(url: str, *, workers_per_process: int = 1) -> optuna.storages.BaseStorage:
    """Open the storage with the settings xtune relies on.

    PostgreSQL: ``pool_pre_ping`` (a restarted server's dead connections are replaced, not
    raised), a pool of 1-2 connections per worker process, heartbeats so that a killed worker's
    trial turns FAIL after the grace period, and a retry of such trials with the same parameters.
    """
    if not is_database(url):
        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        engine_kwargs |= {"pool_size": workers_per_process, "max_overflow": 1, "pool_recycle": 300}
    try:
        from xtune.search.sweep import heartbeat_settings

        heartbeat, grace = heartbeat_settings()
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
        )
    except Exception as exc:
        raise StorageError(
            f"cannot open storage {mask(url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}. "
            "Check that the server runs and the URL (user, host, port, database) is right."
        ) from None
