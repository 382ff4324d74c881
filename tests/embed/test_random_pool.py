"""GET /api/fragments/random served from the per-worker pool: filters, formats, freshness, and one
primary-key lookup per request however large the archive."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import event, update

from embed.pool import FragmentReader
from embed.publish import publish_embed
from embed.routes import READER_KEY
from fragments.models import APPROVED, PENDING, REJECTED, Fragment
from tests.embed.conftest import add_fragments


@pytest.fixture
def app(local_app):
    return local_app


@pytest.fixture
def client(app):
    return app.test_client()


def test_filters_by_collection_and_language(app, client):
    add_fragments(app, 3, collection="vietnam", language="vi")
    add_fragments(app, 3, collection="iran", language="fa", start=10)
    add_fragments(app, 2, collection="iran", language="en", start=20)
    for query, collections, languages in (
        ("collection=iran", {"iran"}, {"fa", "en"}),
        ("lang=vi", {"vietnam"}, {"vi"}),
        ("collection=iran&lang=en", {"iran"}, {"en"}),
        ("collection=all", {"iran", "vietnam"}, {"vi", "fa", "en"}),
    ):
        got = [client.get(f"/api/fragments/random?{query}").get_json() for _ in range(40)]
        assert {g["collection"] for g in got} == collections, query
        assert {g["language"] for g in got} == languages, query


@pytest.mark.parametrize("query, status, message", [
    ("collection=nowhere", 404, "no collection named 'nowhere'"),
    ("lang=xx", 404, "no published fragments in language 'xx'"),
    ("collection=vietnam&lang=fa", 404, "no approved fragments yet"),
    ("format=html", 400, "format must be json or text"),
    ("collection=" + "x" * 5000, 404, "no collection named"),
])
def test_unknown_filters_are_json_404s(app, client, query, status, message):
    add_fragments(app, 2, collection="vietnam", language="vi")
    add_fragments(app, 1, collection="iran", language="fa", start=10)
    response = client.get(f"/api/fragments/random?{query}")
    assert response.status_code == status
    assert message in response.get_json()["error"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_text_format_is_plain_text_with_credit_and_link(app, client):
    add_fragments(app, 1, text="Hà Nội <b>bold</b>", text_chars=80)
    response = client.get("/api/fragments/random?format=text")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert body.startswith("Hà Nội <b>bold</b>") and "https://example.org/vietnam/0" in body
    assert "/captures/1/#:~:text=" in body
    assert "Set-Cookie" not in response.headers and response.headers["Cache-Control"] == "no-store"


def test_every_approved_fragment_is_picked_and_no_other(app, client):
    add_fragments(app, 5)
    add_fragments(app, 3, status=PENDING, start=50)
    counts = Counter(client.get("/api/fragments/random").get_json()["id"] for _ in range(300))
    with app.extensions["samizdat"].Session() as session:
        approved = {f.id for f in session.query(Fragment).filter_by(status=APPROVED)}
    assert set(counts) == approved
    assert min(counts.values()) > 300 / 5 / 3  # uniform enough: none starved


def test_a_fragment_rejected_or_edited_after_the_pool_was_built_is_never_served(app, client):
    add_fragments(app, 4)
    assert len({client.get("/api/fragments/random").get_json()["id"] for _ in range(40)}) == 4
    with app.extensions["samizdat"].Session() as session:
        ids = [f.id for f in session.query(Fragment).order_by(Fragment.id)]
        session.execute(update(Fragment).where(Fragment.id.in_(ids[1:3])).values(status=REJECTED))
        session.execute(update(Fragment).where(Fragment.id == ids[3]).values(status=PENDING))
        session.commit()
    assert {client.get("/api/fragments/random").get_json()["id"] for _ in range(30)} == {ids[0]}


def test_the_pool_follows_a_publish(app, client):
    add_fragments(app, 2, collection="vietnam")
    assert client.get("/api/fragments/random?collection=iran").status_code == 404
    add_fragments(app, 2, collection="iran", language="fa", start=10)
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        publish_embed(session, rt.settings)
    deadline = time.monotonic() + 10
    while client.get("/api/fragments/random?collection=iran").status_code != 200:
        assert time.monotonic() < deadline, "the pool never picked up the publish"
        time.sleep(0.2)


class CountingReader(FragmentReader):
    """The real reader, counting its primary-key lookups."""

    reads = 0

    def read(self, fragment_id):
        CountingReader.reads += 1
        return super().read(fragment_id)


def test_a_request_makes_at_most_one_key_lookup_and_no_session_query(app, client):
    add_fragments(app, 50)
    client.get("/api/fragments/random")
    app.extensions[READER_KEY] = CountingReader(app.extensions["samizdat"].engine)
    CountingReader.reads = 0
    statements = []
    engine = app.extensions["samizdat"].engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for _ in range(200):
            assert client.get("/api/fragments/random?collection=vietnam&lang=vi").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert statements == []  # no count, no OFFSET scan, no ORM session at all
    assert CountingReader.reads == 200  # one primary-key lookup per request
