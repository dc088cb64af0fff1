"""bench/scale.py end to end at a tiny size: simulated workers on direct PostgreSQL and through
a real storage proxy, each row with no error, no trial lost and none left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_scale_bench_runs_both_storages_cleanly() -> None:
    url = os.environ.get("TEST_DB_URL")
    if not url:
        pytest.skip("TEST_DB_URL not set (PostgreSQL tests)")
    run = subprocess.run(
        [sys.executable, "bench/scale.py", "--pg", url, "--workers", "4", "--seconds", "4",
         "--trial-s", "1", "--processes", "2", "--pool-size", "2", "--ramp-s", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith(("direct", "proxy"))]
    assert [row.split()[0] for row in rows] == ["direct", "proxy"]
    for row in rows:
        cells = row.replace("|", " ").split()
        trials_per_s, conns = float(cells[2]), int(cells[8])
        errors, lost, running = (int(c) for c in cells[9:12])
        assert trials_per_s > 0 and (errors, lost, running) == (0, 0, 0), row
        assert conns <= 2 or cells[0] == "direct", row  # the proxy holds its pool, no more
