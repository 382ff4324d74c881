"""Fixtures for provenance tests: the published vectors in tests/provenance/vectors/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_vectors(name: str) -> dict:
    """One vector file; each names its source (repository, path, commit) under ``_source``."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rfc6962() -> dict:
    """RFC 6962 reference leaves, node hashes and roots (transparency-dev/merkle testonly)."""
    return load_vectors("rfc6962_roots.json")
