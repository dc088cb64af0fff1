from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def pg_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """TEST_DB_URL (a real PostgreSQL); tests using it are marked `postgres` and skip without it.
    A database storage keeps learning curves in ./xtune-artifacts unless XTUNE_ARTIFACTS says
    otherwise: here it says the test's own folder, so no test writes into the checkout."""
    url = os.environ.get("TEST_DB_URL")
    if not url:
        pytest.skip("TEST_DB_URL not set (PostgreSQL tests)")
    monkeypatch.setenv("XTUNE_ARTIFACTS", str(tmp_path / "artifacts"))
    yield url
