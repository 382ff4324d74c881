"""`flask sources …` and `flask mirror …` as the local operator uses them."""

import pytest
from sqlalchemy import func, select

from mirror.leader import LeaderLock
from mirror.models import Capture, Source
from tests.sites import seed_names


def count_sources(app) -> int:
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(func.count()).select_from(Source))


def test_sources_add_stores_a_normalised_url(app, cli):
    result = cli.invoke(args=["sources", "add", "HTTPS://Example.ORG:443/page#top", "--every", "6h"])
    assert result.exit_code == 0, result.output
    assert "added: source 1 https://example.org/page" in result.output
    with app.extensions["samizdat"].Session() as session:
        source = session.get(Source, 1)
        assert source.url == "https://example.org/page"
        assert source.interval_minutes == 360


def test_adding_the_same_page_twice_stores_it_once(app, cli):
    cli.invoke(args=["sources", "add", "https://example.org/page"])
    result = cli.invoke(args=["sources", "add", "https://EXAMPLE.org/page#again"])
    assert result.exit_code == 0
    assert "already present" in result.output
    assert count_sources(app) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["not a url"], "Error:"),
        ([""], "URL is empty"),
        (["ftp://example.org/file"], "unsupported scheme"),
        (["mailto:someone@example.org"], "unsupported scheme"),
        (["http://"], "no host"),
        (["https://example.org", "--country", "Vietnam"], "two-letter"),
        (["https://example.org", "--every", "often"], "expected e.g. 30m"),
    ],
)
def test_bad_sources_are_refused_and_nothing_is_stored(app, cli, args, message):
    result = cli.invoke(args=["sources", "add", *args])
    assert result.exit_code != 0
    assert message in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1  # one clear line, no traceback
    assert "Traceback" not in result.output
    assert count_sources(app) == 0


def test_sources_list_json(cli):
    cli.invoke(args=["sources", "add", "https://example.org/a", "--country", "VN", "--collection", "vietnam"])
    result = cli.invoke(args=["sources", "list", "--json"])
    assert '"country": "VN"' in result.output and '"collection": "vietnam"' in result.output


def test_mirror_run_all_captures_and_reports(app, cli, site):
    cli.invoke(args=["sources", "add", site.url(f"/articles/{seed_names()[0]}.html")])
    cli.invoke(args=["sources", "add", site.url("/status/500")])
    result = cli.invoke(args=["mirror", "run", "--all"])
    assert result.exit_code == 0, result.output
    assert "1 captured, 0 unchanged, 1 failed" in result.output
    assert "failed: " in result.output and "(http_error)" in result.output
    with app.extensions["samizdat"].Session() as session:
        statuses = sorted(session.scalars(select(Capture.status)))
    assert statuses == ["failed", "ok"]


def test_mirror_run_needs_ids_or_all(cli):
    assert cli.invoke(args=["mirror", "run"]).exit_code != 0
    result = cli.invoke(args=["mirror", "run", "42"])
    assert result.exit_code != 0 and "no source with id 42" in result.output


def test_doctor_reports_backends(cli, runtime, settings):
    lock = LeaderLock(settings, runtime.engine)  # a scheduler is running
    assert lock.acquire()
    try:
        result = cli.invoke(args=["doctor"])
    finally:
        lock.release()
    assert result.exit_code == 0, result.output
    for name in ("database", "local", "s3", "ipfs"):
        assert name in result.output
    assert "FAILING" not in result.output
