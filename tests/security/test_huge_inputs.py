"""Huge inputs against the real thing: 100 MB uploads to gunicorn, a million-row import and a
100 MB single line through the CLI and the web (item: security tests).

Bodies are really sent, byte after byte, to gunicorn in its own process (the production
server), and the CLI runs as `flask` in a subprocess whose peak memory (ru_maxrss) is compared
with a 1,000-row run of the same command.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import create_engine, func, select

from accounts.models import ApiToken, User
from config.settings import Settings
from mirror.importer import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from mirror.models import Capture, CapturePart, Source
from mirror.sources import add_source
from samizdat import migrate
from samizdat.app import create_app
from tests.config.test_gunicorn import start_gunicorn
from tests.conftest import issue_account_token
from tests.security.test_auth_walk import writes
from tests.services import ROOT, stop_process

MIB = 1024 * 1024
HUGE = 100 * MIB
_SQLITE = "samizdat.db"


def stored(data_dir: Path) -> tuple[int, ...]:
    """Rows that a write would add, and the files in the spool."""
    engine = create_engine(f"sqlite:///{data_dir / _SQLITE}")
    with engine.connect() as conn:
        rows = tuple(
            conn.scalar(select(func.count()).select_from(model))
            for model in (Source, Capture, CapturePart, User, ApiToken)
        )
    engine.dispose()
    spool = data_dir / "blobs"
    files = sum(1 for p in spool.rglob("*") if p.is_file()) if spool.exists() else 0
    return (*rows, files)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """gunicorn serving a SQLite archive with one source and an admin token."""
    tmp = tmp_path_factory.mktemp("huge")
    data_dir = tmp / "data"
    data_dir.mkdir()
    migrate.upgrade(f"sqlite:///{data_dir / _SQLITE}")
    app = create_app(Settings(data_dir=data_dir))
    token = issue_account_token(app, "boss", "admin")
    with app.extensions["samizdat"].Session() as session:
        add_source(session, "https://example.org/kept", 60)
        session.commit()
    routes = writes(app)
    app.extensions["samizdat"].dispose()
    (tmp / "home").mkdir()
    (tmp / "run").mkdir()
    proc, url = start_gunicorn(data_dir, tmp / "home", tmp / "run")
    yield SimpleNamespace(url=url, port=int(url.rsplit(":", 1)[1]), token=token,
                          data_dir=data_dir, routes=routes)
    stop_process(proc)


def send_body(port: int, method: str, path: str, headers: dict[str, str], size: int) -> tuple[int, int]:
    """Send a ``size``-byte multipart body for real, reading the answer meanwhile.

    Returns (status, bytes sent): the server may answer and close before the body is through.
    """
    boundary = "----samizdat-attack"
    opening = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"vn.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {size}\r\n{head}\r\n").encode()
    answer = bytearray()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                answer.extend(chunk)
        except OSError:
            pass

    sent = 0
    with sock:
        sock.sendall(request)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        block = opening + b"https://x.example/a," * (MIB // 20)
        try:
            while sent < size:
                sent += sock.send(block[: size - sent])
        except OSError:
            pass  # the server answered and closed: what it does with a body it refuses
        reader.join(60)
    status_line = bytes(answer).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), (path, bytes(answer[:200]))
    return int(status_line.split()[1]), sent


def test_a_real_100_mb_body_to_every_write_endpoint_is_413_and_writes_nothing(server):
    before = stored(server.data_dir)
    auth = {"Authorization": f"Bearer {server.token}"}
    uploads = {"/api/sources/import", "/api/sources/1/documents", "/manage/sources/import"}
    assert uploads <= {path for _, path, _ in server.routes}
    for method, path, _endpoint in server.routes:
        status, sent = send_body(server.port, method, path, auth, HUGE)
        assert status == 413, (method, path, status)
        assert sent >= 64 * 1024, (path, sent)  # real bytes went out, not just a header
    assert stored(server.data_dir) == before
    assert not list(server.data_dir.rglob(".tmp-*"))
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200  # still serving


def test_a_million_row_upload_to_the_web_import_is_a_clean_400(server, tmp_path):
    rows = "url\n" + "".join(f"https://s{i}.example/\n" for i in range(1_000_000))
    before = stored(server.data_dir)
    response = requests.post(
        server.url + "/api/sources/import", files={"file": ("vn.csv", rows.encode())},
        headers={"Authorization": f"Bearer {server.token}"}, timeout=120,
    )
    assert response.status_code == 400
    assert f"more than {MAX_IMPORT_ROWS} rows" in response.json()["error"]
    assert stored(server.data_dir) == before


def test_a_40_mb_single_line_to_the_web_import_is_answered_in_a_few_bytes(server):
    line = b"https://x.example/" + b"a" * (40 * MIB)
    response = requests.post(
        server.url + "/api/sources/import", files={"file": ("list.txt", line)},
        headers={"Authorization": f"Bearer {server.token}"}, timeout=120,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["added"] == 0 and body["invalid_count"] == 1
    assert len(response.content) < 2_000


def run_cli(data_dir: Path, *args: str) -> SimpleNamespace:
    """``flask …`` in a subprocess: exit code, output and its peak memory in KiB."""
    out = data_dir.parent / "cli.out"
    env = {**os.environ, "SAMIZDAT_DATA_DIR": str(data_dir)}
    env.pop("SAMIZDAT_DATABASE_URL", None)
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return SimpleNamespace(code=proc.returncode, output=out.read_text(), maxrss_kib=usage.ru_maxrss)


@pytest.fixture(scope="module")
def cli_archive(tmp_path_factory) -> Path:
    """An empty migrated SQLite archive for the CLI runs."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    data_dir.mkdir()
    migrate.upgrade(f"sqlite:///{data_dir / _SQLITE}")
    return data_dir


def url_csv(path: Path, rows: int) -> Path:
    """A one-column CSV of ``rows`` distinct URLs."""
    with open(path, "w") as fh:
        fh.write("url\n")
        fh.writelines(f"https://s{i}.example/\n" for i in range(rows))
    return path


def error_lines(output: str) -> list[str]:
    """The output without the progress bar's label."""
    return [line for line in output.splitlines() if line.strip() and not line.startswith("importing")]


def test_the_cli_refuses_a_million_rows_in_one_line_and_bounded_memory(cli_archive, tmp_path):
    small = run_cli(cli_archive, "sources", "import", "--paused",
                    str(url_csv(tmp_path / "small.csv", 1_000)))
    assert small.code == 0, small.output
    assert stored(cli_archive)[0] == 1_000
    big = run_cli(cli_archive, "sources", "import", "--paused",
                  str(url_csv(tmp_path / "big.csv", 1_000_000)))
    assert big.code == 1
    assert error_lines(big.output) == [
        f"Error: the file has more than {MAX_IMPORT_ROWS} rows; split it into smaller files"
    ]
    assert stored(cli_archive)[0] == 1_000  # nothing of the refused file was written
    # The 24 MB file and at most MAX_IMPORT_ROWS pending rows, not a million of them.
    assert big.maxrss_kib - small.maxrss_kib < 256 * 1024, (small.maxrss_kib, big.maxrss_kib)


def test_the_cli_refuses_a_100_mb_single_line_without_reading_it_all(cli_archive, tmp_path):
    path = tmp_path / "line.txt"
    with open(path, "wb") as fh:
        fh.write(b"https://x.example/")
        fh.truncate(HUGE)  # a sparse file: 100 MB to read, nothing to write
    small = run_cli(cli_archive, "sources", "import", str(url_csv(tmp_path / "one.csv", 1)))
    result = run_cli(cli_archive, "sources", "import", str(path))
    assert result.code == 1
    assert error_lines(result.output) == [
        f"Error: file is larger than {MAX_IMPORT_BYTES // MIB} MiB"
    ]
    assert result.maxrss_kib - small.maxrss_kib < (MAX_IMPORT_BYTES + 16 * MIB) // 1024


def test_the_cli_stops_reading_an_endless_pipe_and_refuses_it_in_one_line(cli_archive):
    env = {**os.environ, "SAMIZDAT_DATA_DIR": str(cli_archive)}
    env.pop("SAMIZDAT_DATABASE_URL", None)
    with open("/dev/zero", "rb") as endless:
        proc = subprocess.Popen([sys.executable, "-m", "flask", "sources", "import", "-"],
                                cwd=ROOT, env=env, stdin=endless, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            # Not a speed check: reading everything, as before, would never end.
            output, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            pytest.fail("`flask sources import -` kept reading an endless pipe")
    assert proc.returncode == 1
    assert error_lines(output.decode()) == [f"Error: file is larger than {MAX_IMPORT_BYTES // MIB} MiB"]
