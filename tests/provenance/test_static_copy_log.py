"""The static copy carries only what the public log holds, and a copy of the log itself that its
capture pages point at, so a reader of a mirror verifies without our server."""

from __future__ import annotations

import html
import json
import os
import re

import pytest
from sqlalchemy import select

from archive.static_copy import EXPORT_LINK, SEARCH_INDEX, publish_static
from mirror.pipeline import capture_source
from mirror.sources import add_source
from provenance.appender import append_captures, log_signer
from provenance.log import LogClient
from provenance.models import LoggedCapture
from samizdat.app import create_app
from tests.archive.test_static_export import capture_seeds
from tests.conftest import make_settings
from tests.services import free_port
from tests.sites import seed_names


@pytest.fixture
def copy_app(tmp_path, sqlite_url, site):
    """One capture in the log, a second one stored but not logged yet."""
    app = create_app(make_settings(tmp_path, sqlite_url, public_url=f"http://127.0.0.1:{free_port()}"))
    (logged,) = capture_seeds(app, site, seed_names()[:1])  # appends it to the log
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source_id = add_source(session, site.url(f"/articles/{seed_names()[1]}.html"), 60).source.id
        session.commit()
    unlogged = capture_source(rt, source_id).capture_id
    yield app, logged, unlogged
    app.extensions["samizdat"].dispose()


def test_the_copy_holds_only_logged_captures_and_its_own_log_verifies(copy_app):
    app, logged, unlogged = copy_app
    rt = app.extensions["samizdat"]
    settings = rt.settings
    # A symlink planted in the log directory never brings what it points at into the copy.
    secret = settings.data_dir / "secret.txt"
    secret.write_text("not for publishing")
    os.symlink(secret, settings.log_path / "tile" / "planted")
    report = publish_static(app)
    assert not report.failures
    root = settings.public_path / EXPORT_LINK
    assert not (root / "log/tile/planted").exists()
    assert not any("not for publishing" in p.read_text(errors="replace")
                   for p in root.rglob("*") if p.is_file() and p.stat().st_size < 100_000)
    assert (root / f"captures/{logged}/index.html").is_file()
    assert not (root / f"captures/{unlogged}").exists()
    assert not (root / "vi" / f"captures/{unlogged}").exists()
    # Pages that list the unlogged capture send the reader to the live site, never into the copy.
    live_link = f"{settings.public_url}/captures/{unlogged}/"
    pages = [p.read_text() for p in root.rglob("*.html")]
    assert any(live_link in page for page in pages)
    relative = re.compile(rf'href="(?!https?:)[^"]*captures/{unlogged}/')
    assert not any(relative.search(page) for page in pages)
    index = json.loads((root / SEARCH_INDEX).read_text())
    assert len(index["entries"]) == 1  # the unlogged capture's source has nothing public yet

    # The copy's log/ is the published log: the logged capture's entry verifies from it alone.
    with rt.Session() as session:
        entry = session.scalar(select(LoggedCapture.entry).where(LoggedCapture.capture_id == logged))
    client = LogClient(str(root / "log"), settings.log_origin_name, log_signer(settings).verifier)
    assert client.verify(0, expected=entry.encode()).checkpoint.size == 1
    assert not any(p.name.startswith(".") for p in (root / "log").rglob("*"))

    # The capture page's "Verify and take away" points at the copy's own log, not the server's.
    page = (root / f"captures/{logged}/index.html").read_text()
    command = html.unescape(re.search(r'<pre class="command">([^<]*)</pre>', page).group(1))
    location = command.split("--log ")[1].split()[0]
    assert location == "../../log"
    assert (root / f"captures/{logged}" / location / "checkpoint").resolve() == (root / "log/checkpoint").resolve()
    assert settings.public_url not in command

    # Once the second capture is logged, the next export carries it and the grown log.
    append_captures(rt)
    publish_static(app)
    assert (root / f"captures/{unlogged}/index.html").is_file()
    # (a new client: the last one resolved the symlink to the export that has just been replaced)
    again = LogClient(str(root / "log"), settings.log_origin_name, log_signer(settings).verifier)
    assert again.checkpoint().size == 2


def test_a_copy_on_s3_points_at_its_s3_log(tmp_path, sqlite_url, site, s3_server, bucket):
    app = create_app(make_settings(tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                                   s3_bucket=bucket))
    try:
        (logged,) = capture_seeds(app, site, seed_names()[:1])
        settings = app.extensions["samizdat"].settings
        report = publish_static(app)
        assert not report.failures, report.failures
        page = (settings.public_path / EXPORT_LINK / f"captures/{logged}/index.html").read_text()
        command = html.unescape(re.search(r'<pre class="command">([^<]*)</pre>', page).group(1))
        location = command.split("--log ")[1].split()[0]
        assert location == f"{settings.s3_public_base}/site/log"
        client = LogClient(location, settings.log_origin_name, log_signer(settings).verifier)
        assert client.verify(0).checkpoint.size == 1
    finally:
        app.extensions["samizdat"].dispose()
