"""GET /api/fragments/random: one approved fragment, no trace left."""

from sqlalchemy import update

from fragments.curation import Reviewer, review_pending
from fragments.models import APPROVED, REJECTED, Fragment
from mirror.pipeline import capture_source
from mirror.sources import add_source
from tests.conftest import log_decisions
from tests.sites import seed_names


def capture_article(app, site, index=0):
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[index]}.html"), 60).source
        session.commit()
    outcome = capture_source(rt, source.id)
    # Fragments start pending; these tests are about serving, so an archivist approves them all
    # and a log pass makes that public.
    with rt.Session() as session:
        review_pending(session, APPROVED, Reviewer("arch"))
        session.commit()
    log_decisions(app)
    return outcome


def test_pending_fragments_are_not_served(app, client, site):
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source
        session.commit()
    assert capture_source(rt, source.id).new_fragments > 0
    assert client.get("/api/fragments/random").status_code == 404


def test_no_fragments_is_a_json_404(client):
    response = client.get("/api/fragments/random")
    assert response.status_code == 404
    assert response.get_json()["error"] == "no approved fragments yet"


def test_random_fragment_has_text_and_attribution(app, client, site):
    outcome = capture_article(app, site)
    response = client.get("/api/fragments/random")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "id", "text", "language", "source_url", "title", "site_name", "country", "collection",
        "capture_id", "sha256", "cid", "fetched_at", "link", "edited", "edited_at", "original_text",
    }
    assert body["edited"] is False and body["edited_at"] is None and body["original_text"] is None
    capture_page = f"/captures/{outcome.capture_id}/"  # the reader view
    assert body["link"].startswith(f"http://127.0.0.1:8000{capture_page}#:~:text=")
    assert client.get(capture_page).status_code == 200
    assert body["capture_id"] == outcome.capture_id
    assert body["source_url"] == site.url(f"/articles/{seed_names()[0]}.html")
    assert 60 <= len(body["text"]) <= 280
    assert body["cid"] and len(body["sha256"]) == 64


def test_random_spreads_over_all_fragments(app, client, site):
    outcome = capture_article(app, site, 1)
    seen = {client.get("/api/fragments/random").get_json()["id"] for _ in range(60)}
    assert len(seen) >= min(outcome.new_fragments, 5)


def test_only_approved_fragments_are_served(app, client, site):
    capture_article(app, site)
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        session.execute(update(Fragment).values(status=REJECTED))
        session.commit()
    assert client.get("/api/fragments/random").status_code == 404


def test_random_sets_no_cookie_and_is_never_cached(app, client, site):
    capture_article(app, site)
    response = client.get("/api/fragments/random")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Referrer-Policy"] == "no-referrer"
