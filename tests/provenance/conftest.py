"""Fixtures for provenance tests: the published vectors in tests/provenance/vectors/."""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.provenance.tsa import OpenSSLTSA

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_vectors(name: str) -> dict:
    """One vector file; each names its source (repository, path, commit) under ``_source``."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rfc6962() -> dict:
    """RFC 6962 reference leaves, node hashes and roots (transparency-dev/merkle testonly)."""
    return load_vectors("rfc6962_roots.json")


class StaticLogServer:
    """A plain static file server on 127.0.0.1 over one directory: any web host serving a log."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.directory = directory / "log"
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/log"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass


@pytest.fixture
def static_server(tmp_path):
    """Serves ``tmp_path`` over HTTP on loopback; logs live under ``tmp_path / 'log'``."""
    server = StaticLogServer(tmp_path)
    yield server
    server.close()


@pytest.fixture(scope="session")
def tsa(tmp_path_factory):
    """A real RFC 3161 TSA on loopback (OpenSSL ``ts -reply``) with its own throwaway root CA."""
    server = OpenSSLTSA(tmp_path_factory.mktemp("tsa"), "Samizdat test TSA")
    yield server
    server.close()


@pytest.fixture(scope="session")
def other_tsa(tmp_path_factory):
    """A second real TSA with a different root: trusted by nobody unless a test says so."""
    server = OpenSSLTSA(tmp_path_factory.mktemp("other-tsa"), "Another TSA")
    yield server
    server.close()


@pytest.fixture(autouse=True)
def verifier_state(tmp_path, monkeypatch):
    """The verifier remembers checkpoints under $XDG_STATE_HOME: each test gets its own, so no
    test sees another's log (nor the developer's) as a fork. Subprocesses inherit it."""
    state = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "samizdat-verify"
