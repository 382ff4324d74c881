"""Capture intervals: bounded wherever they enter, and never able to stop the scheduler's tick."""

import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from mirror.importer import import_sources
from mirror.models import Capture, Source
from mirror.scheduler import capture_due_sources
from mirror.sources import MAX_INTERVAL_MINUTES, add_source, due_sources, parse_interval
from samizdat.db import utcnow
from samizdat.errors import SamizdatError
from samizdat.runtime import build_runtime
from tests.conftest import create_account, make_settings


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only: these tests capture nothing."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings):
    """The runtime for these settings."""
    rt = build_runtime(settings)
    yield rt
    rt.dispose()


# Strings the issue found accepted (or crashing), and the edges of the bounds.
OUT_OF_RANGE_TEXT = ["3000000d", "99999999999999999999d", "366d", "525601", "1" * 5000 + "m"]
MALFORMED_TEXT = ["0m", "often", "-5m", "1.5h", "6 hours", "١٢m"]
NOT_TEXT = [5, 1.5, True, [], {"every": "1d"}]


def count_sources(runtime) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(Source))


@pytest.mark.parametrize("text, minutes", [("1", 1), ("1m", 1), ("6h", 360), ("365d", MAX_INTERVAL_MINUTES),
                                           (" 007h ", 420)])
def test_parse_interval_accepts_one_minute_to_365_days(text, minutes):
    assert parse_interval(text) == minutes


@pytest.mark.parametrize("text", OUT_OF_RANGE_TEXT + MALFORMED_TEXT + NOT_TEXT)
def test_parse_interval_refuses_anything_outside_the_bounds(text):
    with pytest.raises(SamizdatError):
        parse_interval(text)


@pytest.mark.parametrize("minutes", [0, -1, MAX_INTERVAL_MINUTES + 1, 3000000 * 1440, True, 2.5])
def test_add_source_refuses_intervals_outside_the_bounds(runtime, minutes):
    with runtime.Session() as session, pytest.raises(SamizdatError, match="interval"):
        add_source(session, "https://example.org/a", minutes)
    assert count_sources(runtime) == 0


def test_import_refuses_an_interval_outside_the_bounds(runtime):
    with runtime.Session() as session, pytest.raises(SamizdatError, match="interval"):
        import_sources(session, b"https://example.org/a\n", "list.txt", MAX_INTERVAL_MINUTES + 1)
    assert count_sources(runtime) == 0


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("every", OUT_OF_RANGE_TEXT + MALFORMED_TEXT + NOT_TEXT + [None])
def test_api_refuses_bad_intervals_with_400_and_stores_nothing(app, client, archivist_token, every):
    headers = bearer(archivist_token)
    created = client.post("/api/sources", json={"url": "https://example.org/a", "every": every}, headers=headers)
    if every is None:  # no interval given: the configured default
        assert created.status_code == 201
    else:
        assert created.status_code == 400, created.get_data(as_text=True)
        assert created.get_json()["error"]
        created = client.post("/api/sources", json={"url": "https://example.org/a"}, headers=headers)
    source_id = created.get_json()["id"]
    patched = client.patch(f"/api/sources/{source_id}", json={"every": every}, headers=headers)
    assert patched.status_code == 400, patched.get_data(as_text=True)
    assert patched.get_json()["error"]
    listed = client.get("/api/sources").get_json()["items"]
    assert [s["interval_minutes"] for s in listed] == [360]


@pytest.fixture
def ana(app, client, login) -> str:
    """The archivist 'ana', logged in on ``client``; returns the session's CSRF token."""
    create_account(app, "ana")
    return login(client, "ana")


@pytest.mark.parametrize("every", ["3000000d", "99999999999999999999d", "0m", "1" * 5000])
def test_the_three_forms_refuse_bad_intervals_with_a_page(app, client, ana, every):
    added = client.post("/manage/sources", data={"url": "https://example.org/a", "every": every, "csrf_token": ana})
    assert added.status_code == 400 and "<html" in added.get_data(as_text=True).lower()
    assert client.post("/manage/sources", data={"url": "https://example.org/a", "csrf_token": ana}).status_code == 303
    edited = client.post("/manage/sources/1/edit", data={"every": every, "csrf_token": ana})
    assert edited.status_code == 400 and "<html" in edited.get_data(as_text=True).lower()
    imported = client.post(
        "/manage/sources/import",
        data={"file": (io.BytesIO(b"https://example.org/b\n"), "list.txt"), "every": every, "csrf_token": ana},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 400 and "<html" in imported.get_data(as_text=True).lower()
    with app.extensions["samizdat"].Session() as session:
        assert session.execute(select(Source.url, Source.interval_minutes)).all() == [("https://example.org/a", 360)]


@pytest.mark.parametrize("command", [["sources", "add", "https://example.org/a"], ["sources", "import", "-"]])
def test_cli_refuses_bad_intervals_in_one_line(app, cli, command):
    result = cli.invoke(args=[*command, "--every", "3000000d"], input="https://example.org/a\n")
    assert result.exit_code != 0
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [
        "Error: interval must be at most 365 days"
    ]
    assert "Traceback" not in result.output
    with app.extensions["samizdat"].Session() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 0


def store_source(runtime, url: str, interval_minutes: int, last_at: datetime | None) -> int:
    """A source row written directly, as one stored before the bounds existed would be."""
    with runtime.Session() as session:
        source = Source(url=url, interval_minutes=interval_minutes, active=True)
        session.add(source)
        session.flush()
        if last_at is not None:
            session.add(Capture(source_id=source.id, status="ok", url=url, fetched_at=last_at))
        session.commit()
        return source.id


def test_stored_absurd_intervals_are_clamped_and_the_tick_goes_on(runtime):
    # PostgreSQL's column is 32-bit; SQLite holds whatever was written (3000000d from the issue).
    absurd = 2**31 - 1 if runtime.engine.dialect.name == "postgresql" else 3000000 * 1440
    hour_ago = utcnow() - timedelta(hours=1)
    huge = store_source(runtime, "https://example.org/huge", absurd, hour_ago)
    # A capture dated at the end of time: no interval can be added to it.
    broken = store_source(runtime, "https://example.org/broken", 60, datetime(9999, 12, 31, tzinfo=timezone.utc))
    stale = store_source(runtime, "https://example.org/stale", 30, hour_ago)
    with runtime.Session() as session:
        assert [s.id for s in due_sources(session)] == [stale]
        # The absurd interval counts as the 365-day maximum, so it is due a year on.
        year_on = utcnow() + timedelta(days=366)
        assert [s.id for s in due_sources(session, year_on)] == [huge, stale]
    assert broken not in (huge, stale)
    assert capture_due_sources(runtime) == 1  # the tick itself queues the good source
