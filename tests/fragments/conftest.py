"""Curation tests need a database and captured pages: the app runs on the local store only."""

import pytest

from fragments.curation import create_collection
from mirror.pipeline import capture_source
from mirror.sources import add_source
from tests.conftest import make_settings
from tests.sites import seed_names


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def capture(app, site):
    """``capture(index, collection=None, auto_approve=None)`` mirrors a seed article; returns the
    outcome. With ``auto_approve`` set, the collection is declared first."""

    def do_capture(index: int = 0, collection: str | None = None, auto_approve: bool | None = None):
        rt = app.extensions["samizdat"]
        with rt.Session() as session:
            if collection and auto_approve is not None:
                create_collection(session, collection, auto_approve)
            url = site.url(f"/articles/{seed_names()[index]}.html")
            source = add_source(session, url, 60, country="VN", collection=collection).source
            session.commit()
        outcome = capture_source(rt, source.id)
        assert outcome.status == "ok" and outcome.new_fragments > 0
        return outcome

    return do_capture
