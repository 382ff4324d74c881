"""A write that fails half-way (no room left) leaves no partial file and no path in the answer.

The failure is real: the writing process runs under RLIMIT_FSIZE (with SIGXFSZ ignored), so the
kernel refuses the write past the limit with EFBIG, as a full disk refuses it with ENOSPC.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import requests
from sqlalchemy import func, select

from mirror.models import Capture
from tests.conftest import issue_account_token
from tests.services import ROOT, free_port, stop_process, wait_for_http

# Set after the imports, so only the work under test meets the limit.
_LIMIT_FILE_SIZE = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write() instead of a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


def run_limited(code: str, limit: int, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start ``code`` in a Python process that may not write any file past ``limit`` bytes."""
    setup, _, work = code.partition("# --- limited from here ---")
    script = textwrap.dedent(setup) + _LIMIT_FILE_SIZE.format(limit=limit) + textwrap.dedent(work)
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **(env or {})},
        start_new_session=True, **kwargs,
    )


def add_source(client, auth: dict) -> int:
    """Add the source the documents are for; its id."""
    created = client.post("/api/sources", json={"url": "https://example.org/gone"}, headers=auth)
    return created.get_json()["id"]


def partial_files(root: Path) -> list[Path]:
    """Temporary spool files left under ``root``."""
    return list(root.rglob(".tmp-*"))


def test_a_failed_local_write_leaves_no_partial_file(tmp_path):
    root = tmp_path / "blobs"
    code = f"""
        from pathlib import Path
        from mirror.storage.local import LocalStore
        from samizdat.errors import StorageFullError
        store = LocalStore(Path({str(root)!r}))
        # --- limited from here ---
        try:
            store.put(b"x" * 256 * 1024)
        except StorageFullError as exc:
            print("full:", exc)
    """
    proc = run_limited(code, 64 * 1024, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)
    assert out.decode().startswith("full:"), err.decode()
    assert "File too large" in out.decode()
    assert partial_files(root) == []


def test_document_upload_on_a_full_store_is_507_without_paths(app, settings, database_url):
    token = issue_account_token(app, "arch", "archivist")
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    sid = add_source(client, auth)
    # Room for the SQLite database to grow a little, none for the 480 kB page (kept in memory
    # by the form parser, which spools only uploads over 500 kB to disk).
    limit = 128 * 1024
    if database_url.startswith("sqlite"):
        limit += os.path.getsize(database_url.removeprefix("sqlite:///"))
    document = b"<p>" + b"samizdat " * 53_000 + b"</p>"
    assert limit < len(document) < 500 * 1024
    port = free_port()
    server = run_limited(
        f"""
        from werkzeug.serving import make_server
        from samizdat.app import create_app
        server = make_server("127.0.0.1", {port}, create_app())
        # --- limited from here ---
        server.serve_forever()
        """,
        limit,
        env={"SAMIZDAT_DATA_DIR": str(settings.data_dir), "SAMIZDAT_DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 30, server)
        response = requests.post(
            f"http://127.0.0.1:{port}/api/sources/{sid}/documents",
            files={"file": ("saved.html", document)},
            headers=auth,
            timeout=30,
        )
    finally:
        stop_process(server)
    assert response.status_code == 507
    assert response.json()["error"] == "the archive's storage is full; the document was not kept"
    assert str(settings.data_dir) not in response.text
    assert partial_files(settings.spool_dir) == []
    with app.extensions["samizdat"].Session() as session:
        assert session.scalar(select(func.count()).select_from(Capture)) == 0


def test_document_upload_on_a_broken_store_is_503_without_paths(app, settings):
    token = issue_account_token(app, "arch", "archivist")
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    sid = add_source(client, auth)
    # A file where the spool directory should be: every write fails, for a reason other than room.
    if settings.spool_dir.exists():
        settings.spool_dir.rmdir()
    settings.spool_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.spool_dir.write_bytes(b"not a directory")
    response = client.post(
        f"/api/sources/{sid}/documents",
        data={"file": (io.BytesIO(b"<p>a page that is gone</p>"), "saved.html")},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 503
    assert response.get_json()["error"] == "the archive's storage failed; the document was not kept"
    assert str(settings.data_dir) not in response.get_data(as_text=True)
