"""A real `xtune storage-proxy` process for tests, and the PostgreSQL cluster behind a URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from xtune.search.proxy import open_proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proxy:
    """`xtune storage-proxy` in front of ``database``, on a port of its own that survives a
    restart (the workers find it again at the same address)."""

    def __init__(self, database: str, log: Path, pool_size: int = 4) -> None:
        self.database, self.pool_size, self.port = database, pool_size, free_port()
        self.log = log  # its stderr, every start appended (a pipe could fill and block it)
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        command = [sys.executable, "-m", "xtune", "storage-proxy", "--storage", self.database,
                   "--port", str(self.port), "--pool-size", str(self.pool_size)]  # fmt: skip
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True,
                                         env=os.environ | {"COLUMNS": "200"})  # fmt: skip
        try:
            open_proxy(self.url, ready_s=120)
        except Exception:
            self.proc.kill()
            raise AssertionError(
                f"the proxy did not start: {self.log.read_text()[-2000:]}"
            ) from None
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to finish the calls under way."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> str:
        """SIGTERM, as `docker stop` sends; returns what it wrote to stderr."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        return self.log.read_text()


def cluster_of(url: str) -> tuple[str, str] | None:
    """(version, name) of the local cluster (pg_lsclusters) that serves ``url``'s port, if this
    machine has one and may restart it (root); None otherwise."""
    port = make_url(url).port or 5432
    if not Path("/etc/postgresql").is_dir() or os.geteuid() != 0:
        return None
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == str(port):
            return version, name
    return None


def restart_cluster(cluster: tuple[str, str], outage_s: float = 0.0) -> None:
    """Stop the cluster, leave it down ``outage_s`` seconds, and start it again."""

    def ctl(action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
                       check=True, timeout=120)  # fmt: skip

    ctl("stop")
    time.sleep(outage_s)
    ctl("start")
