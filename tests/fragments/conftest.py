"""Curation tests need a database and captured pages: the app runs on the local store only."""

import time

import pytest
from sqlalchemy import select

from embed.publish import publish_embed
from fragments.curation import create_collection
from fragments.models import Fragment
from mirror.pipeline import capture_source
from mirror.sources import add_source
from tests.conftest import create_account, make_settings
from tests.sites import seed_names


def bearer(token: str) -> dict:
    """The Authorization header of an API token."""
    return {"Authorization": f"Bearer {token}"}


def stored(app) -> dict:
    """Fragment id → Fragment, in page order."""
    with app.extensions["samizdat"].Session() as session:
        items = session.scalars(select(Fragment).order_by(Fragment.capture_id, Fragment.position))
        return {f.id: f for f in items}


@pytest.fixture
def settings(request, tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only.

    Parametrise indirectly with ``{"fragment_self_approve": True}`` and the like to change one.
    """
    return make_settings(tmp_path, database_url, **getattr(request, "param", {}))


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


@pytest.fixture
def pending(app, capture):
    """The ids of a captured article's (pending) fragments, in page order."""
    capture(0, collection="vietnam")
    return list(stored(app))


@pytest.fixture
def archivist_client(app, client, login):
    """A client logged in as archivist 'arch'; returns (client, csrf token)."""
    create_account(app, "arch")
    return client, login(client, "arch")


def served_after_publish(app, client) -> dict:
    """What the random API serves once the packs are republished, as the scheduler does shortly
    after a curation change (the API's pool of ids follows the packs)."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        publish_embed(session, rt.settings)
    deadline = time.monotonic() + 10
    while (response := client.get("/api/fragments/random")).status_code != 200:
        assert time.monotonic() < deadline, response.get_json()
        time.sleep(0.2)
    return response.get_json()
