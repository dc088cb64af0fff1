"""Where studies live: an embedded journal file by default, PostgreSQL for many machines.

Resolution order: ``--storage``, then ``$XTUNE_STORAGE`` (from the settings), then the study file's ``storage``,
then ``<study name>.journal`` beside the study file. The journal backend, unlike SQLite, never
hands one queued trial to two processes, so ``--workers K`` is safe on it.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from xtune.errors import StorageError
from xtune.search.journal import check_journal
from xtune.settings import Settings

if TYPE_CHECKING:
    from xtune.search.config import StudyConfig


def resolve_storage(config: StudyConfig, override: str | None, settings: Settings) -> str:
    """The storage URL (or journal file path) this study uses."""
    return override or settings.storage or config.study.storage or str(config.default_storage_path)


def is_database(url: str) -> bool:
    return "://" in url


def mask(url: str) -> str:
    """The URL with every secret replaced by ***, safe to print and log.

    Hidden: the password of the user part, and the value of every query parameter whose name
    looks secret (``password``, ``sslpassword``, ``PASSWORD``, ``*token*``, ``*key*``...),
    raw or percent-encoded. User, host, port and database stay visible. A raw ``@`` in the
    password counts as part of it: the host starts after the last ``@`` (SQLAlchemy splits at
    the first, so percent-encode it as ``%40``). Where a URL is ambiguous, more is hidden,
    never less. A journal file path comes back as it is.

    Example:
        >>> mask("postgresql+psycopg2://xtune:p@ss@db:5432/xtune?sslpassword=k")
        'postgresql+psycopg2://xtune:***@db:5432/xtune?sslpassword=***'
    """
    import re

    if not is_database(url):
        return url
    scheme, _, rest = url.partition("://")
    if not re.fullmatch(r"[A-Za-z][\w+.-]*", scheme):
        scheme = "***"
    # Query values first: a raw @ inside a secret value must not end the user part.
    userinfo, at, location = _mask_query(rest).rpartition("@")
    return f"{scheme}://{_mask_userinfo(userinfo)}{at}{_mask_port(location)}"


def _mask_query(text: str) -> str:
    """Each secret-looking ``name=value`` after ``?`` or ``&`` with its value, up to the next
    ``&``, replaced by ***. Every ``?`` and ``&`` is tried, even inside another value."""
    import re
    from urllib.parse import unquote_plus

    # The value is in a lookahead, not consumed: "?app=a?password=b" still finds "password".
    params = re.finditer(r"[?&]([^=&?]*)=(?=([^&]*))", text)
    secret = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)
    pieces: list[str] = []
    pos = 0
    for param in params:
        if secret.search(unquote_plus(param[1])) and param.end() >= pos:
            pieces += [text[pos : param.end()], "***"]
            pos = param.end() + len(param[2])
    return "".join([*pieces, text[pos:]])


def _mask_userinfo(userinfo: str) -> str:
    """``user:***`` for ``user:password``; all of it *** when the user part does not look
    like a user name (then the split at @ was in doubt)."""
    import re

    if not userinfo:
        return userinfo
    user, colon, _ = userinfo.partition(":")
    if not re.fullmatch(r"[\w.~%!$'()*+,;@-]*", user):
        return "***"
    return f"{user}:***" if colon else user


def _mask_port(location: str) -> str:
    """``host:port/db?query`` with a port that is not a number replaced by *** (a URL with
    no @ may carry its password there: ``postgresql://user:secret``)."""
    import re

    end = next((i for i, char in enumerate(location) if char in "/?"), len(location))
    address, tail = location[:end], location[end:]
    hosts: list[str] = []
    for host_port in address.split(","):  # libpq accepts host1:5432,host2:5433
        parts = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::(.*))?", host_port, re.DOTALL)
        if parts is None:
            hosts.append("***")
        elif parts[2] is None or re.fullmatch(r"[0-9]*", parts[2]):
            hosts.append(host_port)
        else:
            hosts.append(f"{parts[1]}:***")
    return ",".join(hosts) + tail


class _Storage(RDBStorage):
    """An RDBStorage whose heartbeat outlives a database outage. Optuna's heartbeat thread ends
    at its first failed write, so a trial still training through a restart would look
    orphaned once the database is back, be failed, and lose its result."""

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            logging.getLogger("xtune").warning(
                "heartbeat of trial id %d not stored (%s); trying again",
                trial_id,
                type(exc).__name__,
            )


def open_storage(
    url: str, settings: Settings | None = None, *, workers_per_process: int = 1
) -> optuna.storages.BaseStorage:
    """Open the storage with the settings xtune relies on.

    ``grpc://host:port``: a client of ``xtune storage-proxy``, which holds the database pool.
    PostgreSQL: ``pool_pre_ping`` (a restarted server's dead connections are replaced, not
    raised), a pool of 1-2 connections per worker process, heartbeats so that a killed worker's
    trial turns FAIL after the grace period, and a retry of such trials with the same parameters.
    """
    from xtune.search.proxy import is_proxy, open_proxy

    if not is_database(url):
        path = Path(url)
        check_journal(path)  # a damaged or foreign file: one line, before anything is written
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if is_proxy(url):  # xtune storage-proxy: it holds the database pool
        return open_proxy(url)
    return open_database(url, settings or Settings(), pool_size=workers_per_process, overflow=1)


def open_database(
    url: str,
    settings: Settings,
    *,
    pool_size: int,
    overflow: int,
    heartbeat: bool = True,
    pre_ping: bool = True,
) -> RDBStorage:
    """The database at ``url`` with ``pool_size`` pooled connections (PostgreSQL) and at most
    ``overflow`` more for a moment; with ``heartbeat``, Optuna's heartbeat and the retry of a
    killed worker's trial (the storage proxy keeps none: its workers beat through xtune's own);
    with ``pre_ping``, each connection is checked as it leaves the pool (the storage proxy
    checks only those that sat idle: :func:`xtune.search.proxy_server.ping_when_idle`).

    Raises:
        StorageError: the database cannot be opened (one line, password hidden);
            ``ConnectionLimit`` where it refused for its ``max_connections``.
    """
    from xtune.search.proxy import connection_limit

    engine_kwargs: dict[str, object] = {"pool_pre_ping": pre_ping}
    if url.startswith("postgresql"):
        engine_kwargs |= {"pool_size": pool_size, "max_overflow": overflow, "pool_recycle": 300}
    beat: dict[str, Any] = {}
    if heartbeat:
        from xtune.search._sweep import requeue  # the trial record: imported where it is used

        beat = {
            "heartbeat_interval": settings.heartbeat_s,
            "grace_period": settings.grace_s,
            "heartbeat_stale_trial_callback": requeue,
        }  # capped like the sweep
    for attempt in range(6):
        try:
            return _Storage(url, engine_kwargs=engine_kwargs, **beat)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Several processes creating the schema of a fresh database at once: one wins,
            # the others find its tables on the next try.
            time.sleep(0.1 * (attempt + 1) + random.random() * 0.2)
        except Exception as exc:
            if (limit := connection_limit(url, exc)) is not None:
                raise limit from None
            detail = scrub(str(exc).splitlines()[0] if str(exc) else "", url)
            raise StorageError(
                f"cannot open storage {mask(url)}: {type(exc).__name__}: {detail}. "
                "Check that the server runs and the URL (user, host, port, database) is right."
            ) from None
    raise StorageError(
        f"cannot open storage {mask(url)}: other processes kept creating its "
        "tables at the same time; run `xtune create-study` once first."
    )


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error) without any piece of ``url`` that :func:`mask` hides: the
    driver may quote a host or port it parsed out of a password (``user:p@ss@host``)."""
    import re
    from urllib.parse import unquote

    split = re.compile(r"[:/@?&=,\[\]]+")
    shown = set(split.split(mask(url)))
    hidden = {t for t in split.split(url) if t not in shown and len(t) >= 2}
    for token in sorted(hidden | {unquote(t) for t in hidden}, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])", "***", text)
    return text
