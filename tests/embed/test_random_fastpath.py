"""The random fragment's fast path answers exactly as the Flask view would, and only when it can."""

from sqlalchemy import select, update
from werkzeug.test import Client

from fragments.models import APPROVED, REJECTED, Fragment
from tests.embed.test_random import capture_article


def only_one_approved(app) -> Fragment:
    """Leave a single approved fragment, so that both paths must pick the same one."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        kept = session.scalars(select(Fragment).where(Fragment.status == APPROVED).order_by(Fragment.id)).first()
        session.execute(update(Fragment).where(Fragment.id != kept.id).values(status=REJECTED))
        session.execute(update(Fragment).values(collection="vietnam"))
        session.commit()
        session.refresh(kept)
        return kept


def test_the_fast_path_sends_the_views_bytes_and_headers(app, site):
    capture_article(app, site)
    kept = only_one_approved(app)
    fast, view = Client(app.wsgi_app), Client(app.wsgi_app.wsgi_app)  # the middleware, Flask alone
    for query in ("", "?format=json", "?format=text", f"?collection={kept.collection}",
                  f"?lang={kept.language}&format=text", "?collection=all"):
        ours, theirs = fast.get("/api/fragments/random" + query), view.get("/api/fragments/random" + query)
        assert ours.status_code == theirs.status_code == 200, query
        assert ours.get_data() == theirs.get_data(), query
        assert sorted(ours.headers.items()) == sorted(theirs.headers.items()), query
        assert "Set-Cookie" not in ours.headers and ours.headers["Cache-Control"] == "no-store"
        assert ours.headers["Referrer-Policy"] == "no-referrer"
        assert kept.id.encode() in ours.get_data() or kept.text.encode() in ours.get_data()


def test_only_ordinary_requests_skip_flask_and_every_error_is_the_views(app, site):
    capture_article(app, site)
    seen = []
    # Counts the requests Flask itself handled (first of the app's hooks, so none can stop it).
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(1))
    client = app.test_client()

    assert client.get("/api/fragments/random").status_code == 200
    assert client.get("/api/fragments/random?format=text").status_code == 200
    assert seen == [], "an ordinary request went through Flask"

    unknown = client.get("/api/fragments/random?collection=nope")
    assert unknown.status_code == 404 and "nope" in unknown.get_json()["error"]
    assert client.get("/api/fragments/random?format=xml").status_code == 400
    assert client.get("/api/fragments/random?lang=%00").status_code == 400
    assert client.get("/api/fragments/random?lang=%ED%A0%80").status_code in (400, 404)
    # Unknown or repeated parameters follow the view's rules too (here: ignored, first wins).
    assert client.get("/api/fragments/random?x=1&format=json&format=text").is_json
    assert client.head("/api/fragments/random").status_code == 200
    assert len(seen) == 6

    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        session.execute(update(Fragment).values(status=REJECTED))
        session.commit()
    # Nothing left to pick (the pool still lists the ids): the view's 404, not a fast-path error.
    gone = client.get("/api/fragments/random")
    assert gone.status_code == 404 and gone.is_json
