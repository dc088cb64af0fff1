"""Where the storage proxy's time goes, per gRPC method (``xtune storage-proxy --timing``).

Two clocks per call: how long it waited for a free server thread (``queued``), and how long
its handler ran (``served``: the database, the cache's lock, the conversion to protobuf). A
client sees both plus the network and its own decoding. On stop the proxy writes one table to
stderr; ``bench/scale.py`` prints it beside its own numbers.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

QUEUED = "(queued for a thread)"


class RpcTimes:
    """Seconds per call, per gRPC method; safe to record from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: defaultdict[str, list[float]] = defaultdict(list)

    def record(self, method: str, seconds: float) -> None:
        with self._lock:
            self._seconds[method].append(seconds)

    def seconds(self) -> dict[str, list[float]]:
        """A copy of every recorded time, by method."""
        with self._lock:
            return {method: list(times) for method, times in self._seconds.items()}

    def table(self) -> str:
        """One line per method, the most total time first: calls, total s, mean/p50/p99 ms."""
        rows = sorted(self.seconds().items(), key=lambda item: -sum(item[1]))
        lines = [
            f"{'method':<34} {'calls':>8} {'total s':>8} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8}"
        ]
        for method, times in rows:
            ordered = sorted(times)
            lines.append(
                f"{method:<34} {len(times):8d} {sum(times):8.1f} "
                f"{1e3 * sum(times) / len(times):8.1f} {1e3 * quantile(ordered, 0.5):8.1f} "
                f"{1e3 * quantile(ordered, 0.99):8.1f}"
            )
        return "\n".join(lines)


def quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (the nearest rank below); nan for none."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def method_name(details: Any) -> str:
    """``GetTrials`` from ``/optuna.StorageService/GetTrials``."""
    return str(details.method).rpartition("/")[2]


class TimedExecutor(ThreadPoolExecutor):
    """A thread pool that records how long each task waited for a free thread."""

    def __init__(self, max_workers: int, times: RpcTimes, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._times = times

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        queued = time.perf_counter()

        def timed() -> Any:
            self._times.record(QUEUED, time.perf_counter() - queued)
            return fn(*args, **kwargs)

        return super().submit(timed)
