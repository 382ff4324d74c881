"""`flask doctor`: one line per part, exit 1 naming whatever fails; --json for scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from mirror.leader import LeaderLock
from mirror.models import Job, Source
from samizdat import migrate
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.services import ROOT, free_port, settings_env

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture
def scheduler_running(app, settings):
    """Hold the scheduler's leader lock, as a running `flask scheduler` would."""
    lock = LeaderLock(settings, app.extensions["samizdat"].engine)
    assert lock.acquire()
    yield
    lock.release()


def doctor(app, *args: str):
    return app.test_cli_runner().invoke(args=["doctor", *args])


def lines_by_part(output: str) -> dict[str, str]:
    """The report's lines, by the part each begins with."""
    parts = ("database", "local", "s3", "ipfs", "redis", "scheduler", "jobs", "replicas s3",
             "replicas ipfs", "processing", "packs", "static copy", "log copies", "browser", "metrics")
    found = {}
    for line in output.splitlines():
        for part in sorted(parts, key=len, reverse=True):
            if line.startswith(part + " "):
                found[part] = line
                break
    return found


def test_a_healthy_archive_passes_every_check(settings, tmp_path):
    app = create_app(settings.replace(redis_url=REDIS_URL))
    lock = LeaderLock(settings, app.extensions["samizdat"].engine)
    assert lock.acquire()
    try:
        result = doctor(app)
        as_json = doctor(app, "--json")
    finally:
        lock.release()
        app.extensions["samizdat"].dispose()
    assert result.exit_code == 0, result.output
    lines = lines_by_part(result.output)
    assert set(lines) == {"database", "local", "s3", "ipfs", "redis", "scheduler", "jobs", "replicas s3",
                          "replicas ipfs", "processing", "packs", "static copy", "log copies", "browser",
                          "metrics"}
    assert "FAILING" not in result.output
    assert "schema at head" in lines["database"] and "127.0.0.1:6379/9" in lines["redis"]
    report = json.loads(as_json.output)
    assert as_json.exit_code == 0 and report["status"] == "ok" and report["failing"] == []
    assert {c["name"]: c["state"] for c in report["checks"]}["packs"] == "warn"  # never published
    assert "never published (`flask log publish`" in lines["log copies"]


def test_a_stopped_backend_fails_with_one_line_naming_it(settings, scheduler_running):
    app = create_app(settings.replace(s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
                                      redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        result = doctor(app)
        report = json.loads(doctor(app, "--json").output)
    finally:
        app.extensions["samizdat"].dispose()
    assert result.exit_code == 1
    failing = [line for line in result.output.splitlines() if "FAILING" in line]
    assert [line.split()[0] for line in failing] == ["s3", "redis"], result.output
    assert report["status"] == "failing" and report["failing"] == ["s3", "redis"]


def test_no_scheduler_and_a_stuck_queue_fail(app, cli):
    now = utcnow()
    with app.extensions["samizdat"].Session() as session:
        session.add(Source(url="https://example.org/", interval_minutes=60, active=True))
        session.flush()
        # Waiting longer than the default capture interval (6 h): nothing is working the queue off.
        session.add(Job(source_id=1, state="queued", trigger="schedule", attempts=0,
                        created_at=now - timedelta(hours=7)))
        session.commit()
    result = cli.invoke(args=["doctor"])
    assert result.exit_code == 1
    lines = lines_by_part(result.output)
    assert "FAILING" in lines["scheduler"] and "flask scheduler" in lines["scheduler"]
    assert "FAILING" in lines["jobs"] and "1 queued" in lines["jobs"]


def test_a_database_behind_the_code_is_told_to_upgrade(local_settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "-1")
    app = create_app(local_settings.replace(database_url=url))
    try:
        result = doctor(app)
    finally:
        app.extensions["samizdat"].dispose()
    assert result.exit_code == 1
    assert "flask db upgrade" in lines_by_part(result.output)["database"]


def test_doctor_prints_its_report_and_no_library_warning(settings):
    # As an operator runs it, with S3 and IPFS on: ipfshttpclient's pools made urllib3 warn.
    migrate.upgrade(settings.database_url)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "doctor"], cwd=ROOT, env=settings_env(settings),
        capture_output=True, text=True, timeout=120,
    )
    assert lines_by_part(result.stdout)["ipfs"].split()[1] == "ok", result.stdout
    assert "Warning" not in result.stderr and "Warning" not in result.stdout, result.stderr


def test_doctor_says_where_chromium_was_found(settings, scheduler_running, app):
    line = lines_by_part(doctor(app).output)["browser"]
    # Debian's, which `make test` installs (`make chromium`).
    assert line.split()[1] == "ok" and "chromium found at /usr/" in line, line
    assert "1 page(s) at a time, each at most 60 s, 500 requests and 50 MiB" in line


def test_doctor_warns_once_when_chromium_is_not_installed(settings, scheduler_running, tmp_path):
    # A PATH without Chromium, as on a server where it was never installed.
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "flask", "doctor"], cwd=ROOT,
        env=settings_env(settings, PATH=str(empty)), capture_output=True, text=True, timeout=120,
    )
    line = lines_by_part(result.stdout)["browser"]
    assert line.split()[1] == "warn", result.stdout
    assert "chromium not found" in line
    assert "auto falls back to http, browser sources cannot be captured" in line
    assert result.stdout.count("chromium not found") == 1


def test_doctor_fails_when_the_configured_chromium_is_missing(settings, scheduler_running, tmp_path):
    app = create_app(settings.replace(chromium=str(tmp_path / "chromium")))
    try:
        result = doctor(app)
    finally:
        app.extensions["samizdat"].dispose()
    line = lines_by_part(result.output)["browser"]
    assert result.exit_code == 1 and "FAILING" in line, result.output
    assert f"SAMIZDAT_CHROMIUM={tmp_path / 'chromium'} is not an executable file" in line
