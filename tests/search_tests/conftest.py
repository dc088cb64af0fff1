from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.study import StudyDirection

from xtune.search.proxy_cache import ProxyCache
from xtune.search.storage import open_database
from xtune.settings import Settings


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


@pytest.fixture
def cache(pg_url: str) -> Iterator[tuple[ProxyCache, int, str]]:
    """A storage proxy's cache on the real database, an empty study of it, and the URL."""
    database = open_database(pg_url, Settings(), pool_size=4, overflow=0, heartbeat=False)
    proxy = ProxyCache(database)
    name = f"cache_{os.getpid()}_{time.time_ns()}"
    study_id = proxy.create_new_study([StudyDirection.MINIMIZE], name)
    yield proxy, study_id, pg_url
    proxy.delete_study(study_id)
    database.engine.dispose()
