"""The storage proxy (``xtune storage-proxy``): Optuna's gRPC storage server in front of
PostgreSQL, holding the one pool every worker shares.

The database pool holds ``pool_size`` connections and no overflow, so PostgreSQL never sees more
from the proxy however many workers call it. Calls are served by ``threads`` threads (256 by
default), more than the pool: a call that waits for a connection or for a read of its study
holds a thread, and with fewer threads than callers every other call would queue behind it.
Trials are read through Optuna's trial cache as ``load_study`` does (a finished trial is read
from the database once), with the database calls outside the cache's lock and the reads of a
study coalesced (:mod:`xtune.search.proxy_cache`): at 128 workers a read of every RUNNING
trial is the costly call, and one read at a time serves every worker that asked meanwhile.
New trials of a study that are asked for at once are created together, under one lock of the
study's row (:mod:`xtune.search.proxy_create`).
A read fetches rows rather than ORM objects (:mod:`xtune.search.proxy_read`), and each trial's
gRPC message is built once (:mod:`xtune.search.proxy_service`).

A call that finds the database away (restarting, unreachable) is answered UNAVAILABLE, and the
proxy logs one line per outage, not a traceback per call; workers back off and retry as they do
on direct PostgreSQL, and fail and requeue the trial the outage cut off.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna
import sqlalchemy

from xtune.errors import ProxyError
from xtune.search.proxy import ProxyAddress, is_proxy
from xtune.search.proxy_timing import RpcTimes, TimedExecutor, method_name
from xtune.search.storage import is_database, mask, open_database
from xtune.settings import Settings

# What a call raises while the database restarts or cannot be reached.
AWAY = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
    optuna.exceptions.StorageInternalError,
)
STOP_GRACE_S = 5.0
PING_IDLE_S = 10.0  # a pooled connection unused this long is checked before use
# Calls served at once. A call that waits for a read of the study under way (every worker's
# trial list, coalesced: :mod:`xtune.search.proxy_cache`) holds a thread but no connection, so
# there are more threads than connections: at least one per worker keeps a write from
# queueing behind the reads.
DEFAULT_THREADS = 256


def _interceptor(times: RpcTimes | None) -> Any:
    """A gRPC server interceptor that answers UNAVAILABLE while the database is away, and
    records each call's time in ``times`` if given."""
    import grpc  # type: ignore[import-untyped]

    log = logging.getLogger("xtune")

    class DatabaseAway(grpc.ServerInterceptor):  # type: ignore[misc]
        def __init__(self) -> None:
            self.away = False

        def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
            handler = continuation(details)
            if handler is None or handler.unary_unary is None:
                return handler
            call, method = handler.unary_unary, method_name(details)

            def guarded(request: Any, context: Any) -> Any:
                start = time.perf_counter()
                try:
                    reply = call(request, context)
                except AWAY as exc:
                    if not self.away:
                        log.warning(
                            "database unavailable (%s); answering UNAVAILABLE until it is back",
                            type(exc).__name__,
                        )
                    self.away = True
                    context.abort(
                        grpc.StatusCode.UNAVAILABLE, f"database unavailable: {type(exc).__name__}"
                    )
                finally:
                    if times is not None:
                        times.record(method, time.perf_counter() - start)
                if self.away:
                    self.away = False
                    log.warning("database back")
                return reply

            return handler._replace(unary_unary=guarded)

    return DatabaseAway()


def start_proxy(
    database_url: str,
    settings: Settings,
    *,
    host: str,
    port: int,
    pool_size: int,
    threads: int = DEFAULT_THREADS,
    times: RpcTimes | None = None,
) -> Any:
    """Open the database with a pool of ``pool_size`` connections and start serving it on
    ``host:port`` with ``threads`` threads; returns the started ``grpc.Server``. With
    ``times``, each call's time is recorded there.

    Raises:
        ProxyError: ``database_url`` is not a database, or ``host:port`` is taken.
        StorageError: the database cannot be opened (one line, password hidden).
    """
    import grpc
    from optuna.storages._grpc.auto_generated.api_pb2_grpc import (
        add_StorageServiceServicer_to_server,
    )

    from xtune.search.proxy_service import ProxyService

    if not is_database(database_url) or is_proxy(database_url):
        raise ProxyError(
            f"the storage proxy serves a database, not {mask(database_url)}; pass --storage "
            "postgresql+psycopg2://USER@HOST:5432/DB (or set XTUNE_STORAGE to it)."
        )
    address = ProxyAddress(host, port)
    _check_free(address)  # before the database is opened, and before gRPC logs its own error
    # No overflow: calls beyond the pool wait for a connection (up to SQLAlchemy's 30 s)
    database = open_database(
        database_url, settings, pool_size=pool_size, overflow=0, heartbeat=False, pre_ping=False
    )
    ping_when_idle(database.engine, PING_IDLE_S)
    pool = (
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="xtune-proxy")
        if times is None
        else TimedExecutor(threads, times, "xtune-proxy")
    )
    # so_reuseport off: a second proxy on a taken port fails here, instead of sharing it
    server = grpc.server(
        pool, interceptors=[_interceptor(times)], options=[("grpc.so_reuseport", 0)]
    )
    add_StorageServiceServicer_to_server(ProxyService(database), server)  # type: ignore[no-untyped-call]
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise ProxyError(_taken(address))
    server.start()
    return server


def ping_when_idle(engine: sqlalchemy.Engine, idle_s: float) -> None:
    """Check a pooled connection as it leaves the pool only if it sat unused for ``idle_s``
    seconds or more (a server restart or a firewall may have dropped it meanwhile); a dead one
    is replaced before the call uses it. A connection in steady use is not checked: a check is
    a round trip to the database, and at 100+ workers every call would pay one. A connection
    that died while in use fails its call, and SQLAlchemy then replaces every connection of
    the pool opened before that failure."""

    @sqlalchemy.event.listens_for(engine, "connect")
    @sqlalchemy.event.listens_for(engine, "checkin")
    def used(dbapi_connection: Any, record: Any) -> None:
        record.info["xtune_idle_since"] = time.monotonic()

    @sqlalchemy.event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("xtune_idle_since", 0.0) < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # SQLAlchemy's own check, in autocommit
        except Exception:
            raise sqlalchemy.exc.DisconnectionError("a pooled connection was dropped") from None


def _taken(address: ProxyAddress) -> str:
    return (
        f"cannot listen on {address}: the port is taken (another proxy?) or the host is not "
        "an address of this machine; pass another --port or --host."
    )


def _check_free(address: ProxyAddress) -> None:
    import socket

    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address.host, address.port))
        except OSError:
            raise ProxyError(_taken(address)) from None


def serve_until_stopped(server: Any, times: RpcTimes | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM (``docker stop``), then let calls under way finish; with
    ``times``, log where the time went, per method."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop(STOP_GRACE_S).wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if times is not None:
            logging.getLogger("xtune").warning(
                "time per call, served and queued:\n%s", times.table()
            )
