"""``xtune storage-proxy``: one connection pool on PostgreSQL for many workers."""

from __future__ import annotations

from typing import Annotated

import typer

from xtune.cli._app import OPERATIONS, app, err, out, research

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


PoolSizeOpt = Annotated[
    int,
    typer.Option(
        help="Database connections the proxy holds (at most), for all workers.", min=1, max=1000
    ),
]
ThreadsOpt = Annotated[
    int,
    typer.Option(
        help="Calls served at once (a call waiting for a connection holds one); at least "
        "one per worker.",
        min=1,
        max=4096,
    ),
]
TimingOpt = Annotated[
    bool,
    typer.Option(
        "--timing", help="On stop, write each gRPC method's call count and times to stderr."
    ),
]


@app.command("storage-proxy", rich_help_panel=OPERATIONS)
def storage_proxy(
    storage: Annotated[
        str | None,
        typer.Option(
            help="The database to serve, e.g. postgresql+psycopg2://user@host:5432/db. "
            "Default: $XTUNE_STORAGE."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to your network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 13000,
    pool_size: PoolSizeOpt = 8,
    threads: ThreadsOpt = 256,
    timing: TimingOpt = False,
) -> None:
    """Serve one PostgreSQL to many workers through one pool.

    Optuna's gRPC storage proxy. Workers, status, export and the dashboard then take --storage
    grpc://HOST:PORT (or XTUNE_STORAGE) and hold no database connection of their own: PostgreSQL
    sees at most --pool-size connections from the proxy, however many workers there are. A
    worker killed mid-trial is noticed by xtune's own heartbeat through the proxy
    (XTUNE_HEARTBEAT_S, XTUNE_GRACE_S); the proxy and the database may restart under running
    workers."""
    from xtune.errors import XtuneError
    from xtune.search.proxy import ProxyAddress
    from xtune.search.proxy_server import serve_until_stopped, start_proxy
    from xtune.search.proxy_timing import RpcTimes
    from xtune.search.storage import mask

    env = research()
    url = storage or env.storage
    if not url:
        raise XtuneError(
            "pass --storage postgresql+psycopg2://USER@HOST:5432/DB (or set "
            "XTUNE_STORAGE): the database the proxy serves."
        )
    if host not in LOCAL_HOSTS:
        err.print(
            f"[bold yellow]warning:[/] serving on {host}: the storage proxy has no login, so anyone "
            f"who can reach port {port} can read and DELETE your studies. Keep the port inside a "
            "private network (a docker network, a firewall)."
        )
    times = RpcTimes() if timing else None
    server = start_proxy(
        url, env, host=host, port=port, pool_size=pool_size, threads=threads, times=times
    )
    out.print(
        f"storage proxy for {mask(url)} on {ProxyAddress(host, port)}, at most {pool_size} "
        "database connections; Ctrl-C stops it",
        highlight=False,
        soft_wrap=True,
    )
    serve_until_stopped(server, times)
