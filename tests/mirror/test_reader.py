"""Reading a capture from the archive: safe replay, downloads, text-fragment links."""

from mirror.pipeline import capture_source
from mirror.reader import capture_link, capture_link_path
from mirror.sources import add_source
from tests.sites import PHOTO_PNG, article_html, seed_names


def capture(app, site, path=None):
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = add_source(session, site.url(path or f"/articles/{seed_names()[0]}.html"), 60).source
        session.commit()
    return capture_source(rt, source.id)


def test_reader_replays_the_offline_copy_sandboxed(app, client, site):
    outcome = capture(app, site)
    page = client.get(f"/captures/{outcome.capture_id}/files/offline.html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "script-src" not in csp  # default-src 'none' covers it
    assert b"<script" not in page.data.lower()
    assert "Set-Cookie" not in page.headers


def test_assets_render_and_the_original_page_only_downloads(app, client, site):
    outcome = capture(app, site)
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        from mirror.models import Capture

        parts = {p.role: p.name for p in session.get(Capture, outcome.capture_id).parts if p.role != "asset"}
        png = next(p.name for p in session.get(Capture, outcome.capture_id).parts if p.content_type == "image/png")
    image = client.get(f"/captures/{outcome.capture_id}/files/{png}")
    assert image.data == PHOTO_PNG and image.mimetype == "image/png"
    original = client.get(f"/captures/{outcome.capture_id}/files/{parts['page']}")
    assert original.data == article_html(seed_names()[0])
    assert original.mimetype == "application/octet-stream"
    assert original.headers["Content-Disposition"].startswith("attachment;")
    warc = client.get(f"/captures/{outcome.capture_id}/files/capture.warc.gz")
    assert warc.headers["Content-Disposition"].startswith("attachment;")


def test_old_file_urls_move_for_good_under_files(app, client, site):
    # Published packs and links carry /captures/<id>/offline.html: they must keep working.
    outcome = capture(app, site)
    old = client.get(f"/captures/{outcome.capture_id}/offline.html")
    assert old.status_code == 301
    assert old.headers["Location"].endswith(f"/captures/{outcome.capture_id}/files/offline.html")
    assert client.get(old.headers["Location"]).status_code == 200


def test_unknown_captures_and_files_are_404(app, client, site):
    outcome = capture(app, site)
    assert client.get("/captures/999/").status_code == 404
    assert client.get(f"/captures/{outcome.capture_id}/../../etc/passwd").status_code == 404
    assert client.get(f"/captures/{outcome.capture_id}/nope.html").status_code == 404
    assert client.get(f"/captures/{outcome.capture_id}/files/nope.html").status_code == 404
    assert client.get(f"/captures/{outcome.capture_id}/files/../../etc/passwd").status_code == 404
    failed = capture(app, site, "/status/500")
    assert client.get(f"/captures/{failed.capture_id}/").status_code == 404


def test_text_fragment_links_point_at_the_passage(app):
    with app.test_request_context():
        short = capture_link(3, "Freedom of expression online.")
        long = capture_link(3, "People in Vietnam can be thrown in jail for the click of a mouse, said the report - again.")
    # To the reader view: its whole paragraphs are where the split text is found.
    assert short == "/captures/3/#:~:text=Freedom%20of%20expression%20online."
    assert long == "/captures/3/#:~:text=People%20in%20Vietnam%20can%20be,report%20%2D%20again."
    assert capture_link_path(3, "Freedom of expression online.") == short
