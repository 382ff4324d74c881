"""config/gunicorn.conf.py: instances on one host stay independent of each other."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import requests

from tests.services import ROOT, free_port, stop_process, wait_for_http


def start_gunicorn(
    data_dir: Path, home: Path, runtime_dir: Path, log: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """Migrate a SQLite database in ``data_dir`` and serve it with gunicorn on a free port.

    HOME and XDG_RUNTIME_DIR point into the test's directory: that is where gunicorn's default
    control socket would go, shared by every instance of the same user. With ``log``, what the
    migration and gunicorn print goes there, as `make run` shows it on the terminal.
    """
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "SAMIZDAT_DATA_DIR": str(data_dir),
        "SAMIZDAT_BIND": f"127.0.0.1:{port}",
        "SAMIZDAT_WEB_WORKERS": "1",
    }
    env.pop("SAMIZDAT_DATABASE_URL", None)
    migrated = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    )
    output = subprocess.DEVNULL
    if log is not None:
        log.write_text(migrated.stdout + migrated.stderr)
        output = log.open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, stdout=output, stderr=output, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", 30, proc)
    except Exception:
        stop_process(proc)
        raise
    return proc, url


def sockets_under(*roots: Path) -> list[Path]:
    """Every Unix socket file below ``roots``."""
    return [
        path
        for root in roots
        for path in root.rglob("*")
        if stat.S_ISSOCK(path.lstat().st_mode)
    ]


def test_two_instances_share_no_control_socket_and_outlive_each_other(tmp_path):
    home, runtime_dir = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime_dir.mkdir()
    first, first_url = start_gunicorn(tmp_path / "a", home, runtime_dir)
    try:
        second, second_url = start_gunicorn(tmp_path / "b", home, runtime_dir)
        try:
            for url in (first_url, second_url):
                assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
            # The default socket path is per user, so one instance would unlink the other's.
            assert sockets_under(home, runtime_dir) == []
        finally:
            stop_process(second)
        # Stopping one instance leaves the other serving.
        assert requests.get(f"{first_url}/healthz", timeout=5).status_code == 200
        assert sockets_under(home, runtime_dir) == []
    finally:
        stop_process(first)


def test_migrating_and_starting_print_no_alembic_plugin_lines(tmp_path):
    log = tmp_path / "startup.log"
    proc, _url = start_gunicorn(tmp_path / "data", tmp_path, tmp_path, log=log)
    stop_process(proc)  # answered /healthz: its worker has loaded the app
    printed = log.read_text()
    assert "database at" in printed and "Booting worker" in printed  # both were captured
    assert "alembic" not in printed
