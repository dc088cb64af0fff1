from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def pg_url() -> Iterator[str]:
    """TEST_DB_URL (a real PostgreSQL); tests using it are marked `postgres` and skip without it."""
    url = os.environ.get("TEST_DB_URL")
    if not url:
        pytest.skip("TEST_DB_URL not set (PostgreSQL tests)")
    yield url
