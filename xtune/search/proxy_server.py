"""The storage proxy (``xtune storage-proxy``): Optuna's gRPC storage server in front of
PostgreSQL, holding the one pool every worker shares.

Calls are served by ``pool_size`` threads, each holding at most one database connection at a
time, so the proxy never holds more than ``pool_size`` connections however many workers call
it (one more while it checks the schema at start). Trials are read through Optuna's trial
cache, as ``load_study`` does: a finished trial is read from the database once.

A call that finds the database away (restarting, unreachable) is answered UNAVAILABLE, and the
proxy logs one line per outage, not a traceback per call; workers back off and retry as they do
on direct PostgreSQL, and fail and requeue the trial the outage cut off.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna
import sqlalchemy

from xtune.errors import ProxyError
from xtune.search.proxy import ProxyAddress, is_proxy
from xtune.search.storage import is_database, mask, open_storage
from xtune.settings import Settings

# What a call raises while the database restarts or cannot be reached.
AWAY = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
    optuna.exceptions.StorageInternalError,
)
STOP_GRACE_S = 5.0


def _interceptor() -> Any:
    """A gRPC server interceptor that answers UNAVAILABLE while the database is away."""
    import grpc  # type: ignore[import-untyped]

    log = logging.getLogger("xtune")

    class DatabaseAway(grpc.ServerInterceptor):  # type: ignore[misc]
        def __init__(self) -> None:
            self.away = False

        def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
            handler = continuation(details)
            if handler is None or handler.unary_unary is None:
                return handler
            call = handler.unary_unary

            def guarded(request: Any, context: Any) -> Any:
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
                if self.away:
                    self.away = False
                    log.warning("database back")
                return reply

            return handler._replace(unary_unary=guarded)

    return DatabaseAway()


def start_proxy(
    database_url: str, settings: Settings, *, host: str, port: int, pool_size: int
) -> Any:
    """Open the database with a pool of ``pool_size`` connections and start serving it on
    ``host:port``; returns the started ``grpc.Server``.

    Raises:
        ProxyError: ``database_url`` is not a database, or ``host:port`` is taken.
        StorageError: the database cannot be opened (one line, password hidden).
    """
    import grpc
    from optuna.storages import get_storage
    from optuna.storages._grpc.auto_generated.api_pb2_grpc import (
        add_StorageServiceServicer_to_server,
    )
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    if not is_database(database_url) or is_proxy(database_url):
        raise ProxyError(
            f"the storage proxy serves a database, not {mask(database_url)}; pass --storage "
            "postgresql+psycopg2://USER@HOST:5432/DB (or set XTUNE_STORAGE to it)."
        )
    address = ProxyAddress(host, port)
    _check_free(address)  # before the database is opened, and before gRPC logs its own error
    backend = get_storage(open_storage(database_url, settings, workers_per_process=pool_size))
    threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="xtune-proxy")
    # so_reuseport off: a second proxy on a taken port fails here, instead of sharing it
    server = grpc.server(threads, interceptors=[_interceptor()], options=[("grpc.so_reuseport", 0)])
    add_StorageServiceServicer_to_server(OptunaStorageProxyService(backend), server)  # type: ignore[no-untyped-call]
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise ProxyError(_taken(address))
    server.start()
    return server


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


def serve_until_stopped(server: Any) -> None:
    """Serve until Ctrl-C or SIGTERM (``docker stop``), then let calls under way finish."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop(STOP_GRACE_S).wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
