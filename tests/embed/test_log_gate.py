"""Issue #15: a decision not yet in the log is not yet public. Every public surface of a fragment
(its page, JSON, card, oEmbed, collection page and feed, the random API and `flask embed random`)
shows an approved fragment only once a log pass has published its approval, and stops showing it
once a rejection is logged."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from fragments.curation import Reviewer, review
from fragments.models import REJECTED, Fragment
from fragments.store import random_approved
from provenance.appender import append_captures
from tests.embed.conftest import add_fragments

# The pool looks at the checkpoint every 2 s; its max age (60 s) is far beyond this.
POOL_DEADLINE = 30.0


@pytest.fixture
def client(app):
    return app.test_client()


def ids_of(app, collection: str) -> list[str]:
    with app.extensions["samizdat"].Session() as session:
        return list(session.scalars(select(Fragment.id).where(Fragment.collection == collection)))


def surfaces(app, client, fragment_id: str) -> dict[str, int]:
    """The status code of each public surface for ``fragment_id`` (in collection "second")."""
    public_url = app.extensions["samizdat"].settings.public_url.rstrip("/")
    return {
        "page": client.get(f"/fragments/{fragment_id}").status_code,
        "json": client.get(f"/fragments/{fragment_id}.json").status_code,
        "card": client.get(f"/fragments/{fragment_id}/card").status_code,
        "oembed": client.get("/oembed", query_string={
            "url": f"{public_url}/fragments/{fragment_id}"}).status_code,
        "collection": client.get("/collections/second").status_code,
        "feed": client.get("/collections/second/feed.atom").status_code,
        "random": client.get("/api/fragments/random?collection=second").status_code,
    }


def random_pick(app) -> str | None:
    with app.extensions["samizdat"].Session() as session:
        fragment = random_approved(session)
        return fragment.id if fragment else None


def test_an_approval_is_public_on_every_surface_only_while_the_log_holds_it(app, client):
    runtime = app.extensions["samizdat"]
    add_fragments(app, 1, collection="first", logged=True)  # the pool is not empty
    assert client.get("/api/fragments/random").status_code == 200
    add_fragments(app, 1, collection="second", start=1, logged=False)
    [fragment_id] = ids_of(app, "second")

    # Approved in the database, not in the log: nowhere.
    assert set(surfaces(app, client, fragment_id).values()) == {404}
    assert random_pick(app) == ids_of(app, "first")[0]

    # A log pass publishes the approval: everywhere (the random API once its pool sees the new
    # checkpoint, with no publish of the packs).
    assert append_captures(runtime).decisions == 1
    deadline = time.monotonic() + POOL_DEADLINE
    while client.get("/api/fragments/random?collection=second").status_code != 200:
        assert time.monotonic() < deadline, "the pool never saw the new checkpoint"
        time.sleep(0.5)
    assert set(surfaces(app, client, fragment_id).values()) == {200}
    body = client.get("/api/fragments/random?collection=second").get_json()
    assert body["id"] == fragment_id

    # Rejected: off at once (the status is checked as well as the log), and after a log pass
    # the log no longer vouches for it either.
    with runtime.Session() as session:
        review(session, [fragment_id], REJECTED, Reviewer("arch"))
        session.commit()
    assert client.get(f"/fragments/{fragment_id}.json").status_code == 404
    assert append_captures(runtime).decisions == 1
    assert set(surfaces(app, client, fragment_id).values()) == {404}
    assert random_pick(app) == ids_of(app, "first")[0]


def test_text_changed_behind_the_logs_back_is_on_no_surface(app, client):
    runtime = app.extensions["samizdat"]
    add_fragments(app, 1, collection="second", logged=True)
    [fragment_id] = ids_of(app, "second")
    assert set(surfaces(app, client, fragment_id).values()) == {200}
    with runtime.Session() as session:
        session.get(Fragment, fragment_id).text = "Words nobody approved."
        session.commit()
    assert set(surfaces(app, client, fragment_id).values()) == {404}
    assert random_pick(app) is None
