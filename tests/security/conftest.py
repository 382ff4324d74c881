"""Security tests need only a database: the app runs on the local store, without S3 or IPFS."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only."""
    return make_settings(tmp_path, database_url)
