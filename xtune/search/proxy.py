"""Workers that reach PostgreSQL through one storage proxy: ``grpc://host:port``.

Each worker process on PostgreSQL holds 1-2 connections, and the server's ``max_connections``
(100 by default) runs out somewhere between 40 and 65 workers. ``xtune storage-proxy`` runs
Optuna's gRPC storage proxy (:mod:`xtune.search.proxy_server`) in front of the database with one
pool of a fixed size; workers, ``status``, ``export`` and the dashboard open ``grpc://host:port``
wherever they take a storage URL, and hold no database connection at all.

Optuna's gRPC client keeps no heartbeat; xtune's own heartbeat through the proxy
(:mod:`xtune.search.beat`) tells a dead worker's trial from a live one.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import optuna
import sqlalchemy

from xtune.errors import ConnectionLimit, StorageError
from xtune.search.storage import mask, scrub

SCHEME = "grpc://"
DEFAULT_PORT = 13000
READY_S = 5.0  # how long a client waits for the proxy before it says it is not there


def is_proxy(url: str) -> bool:
    return url.startswith(SCHEME)


@dataclass(frozen=True)
class ProxyAddress:
    """Where a storage proxy listens."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> ProxyAddress:
        """``grpc://host:port`` (the port defaults to 13000; IPv6 hosts in brackets).

        Raises:
            StorageError: the URL is not of that form.
        """
        found = re.fullmatch(
            r"grpc://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?/?", url
        )
        port = int(found[2]) if found and found[2] else DEFAULT_PORT
        if found is None or not 0 < port < 65536:
            raise StorageError(
                f"storage {mask(url)}: a storage proxy URL is grpc://HOST:PORT, e.g. "
                f"grpc://127.0.0.1:{DEFAULT_PORT} (no user, password or database: the proxy holds "
                "those)."
            )
        return cls(found[1].strip("[]"), port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{SCHEME}{host}:{self.port}"


def open_proxy(url: str, ready_s: float = READY_S) -> optuna.storages.BaseStorage:
    """A client of the storage proxy at ``url``, once the proxy answers.

    Raises:
        StorageError: the URL is malformed, or no proxy answered within ``ready_s`` seconds.
    """
    from optuna.storages import GrpcStorageProxy

    address = ProxyAddress.parse(url)
    with warnings.catch_warnings():  # "experimental" on every construction
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        proxy = GrpcStorageProxy(host=address.host, port=address.port)
    try:
        proxy.wait_server_ready(timeout=ready_s)
    except ConnectionError:
        proxy.close()
        raise StorageError(
            f"no storage proxy answers at {address} (waited {ready_s:g} s); start it with "
            f"`xtune storage-proxy --storage postgresql+psycopg2://... --port {address.port}`, "
            "or check the host and port."
        ) from None
    return proxy


def _rpc_error() -> type[Exception]:
    try:
        import grpc  # type: ignore[import-untyped]
    except ImportError:  # no grpcio, no proxy: nothing raises it
        return StorageError
    error: type[Exception] = grpc.RpcError
    return error


# What a call through the proxy raises when the proxy is down or restarting (UNAVAILABLE), or
# its database is (the proxy answers UNAVAILABLE for that too): workers ride it out.
RPC_ERROR = _rpc_error()


# What PostgreSQL answers a connection past max_connections (or past the slots left to
# ordinary users once superuser_reserved_connections are set aside).
_LIMIT = re.compile(r"too many clients|remaining connection slots are reserved", re.IGNORECASE)


def connection_limit(url: str, exc: BaseException) -> ConnectionLimit | None:
    """One line for a database that refused a connection for its ``max_connections`` limit
    (anywhere in ``exc``'s chain), naming the limit and the proxy; None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionLimit):
            return current
        if isinstance(current, sqlalchemy.exc.DBAPIError) and _LIMIT.search(str(current)):
            said = scrub(str(current.orig).strip().splitlines()[-1], url)[:200]
            return ConnectionLimit(
                f"PostgreSQL at {mask(url)} refuses more connections ({said.strip()}): its "
                "max_connections limit (100 by default) is reached, and each worker process "
                f"holds 1-2. Run `xtune storage-proxy --storage {mask(url)} --pool-size 8` and "
                f"give the workers --storage grpc://HOST:{DEFAULT_PORT}, or raise "
                "max_connections in postgresql.conf."
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
