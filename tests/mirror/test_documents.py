"""Documents as sources: an uploaded HTML or text file kept and fragmented like a capture."""

import io

import pytest
from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator

from fragments.models import Fragment
from mirror.models import Capture
from tests.sites import article_html, seed_names, seed_text

GONE = "https://news.example.vn/deleted-article"


def test_cli_upload_of_an_html_file_is_stored_split_and_replicated(app, cli, tmp_path):
    path = tmp_path / "saved.html"
    path.write_bytes(article_html(seed_names()[0]))
    result = cli.invoke(args=["sources", "upload", str(path), "--url", GONE, "--country", "VN"])
    assert result.exit_code == 0, result.output
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        capture = session.scalars(select(Capture)).one()
        fragments = list(session.scalars(select(Fragment)))
        warc = next(p for p in capture.parts if p.role == "warc")
        assert capture.url == GONE and capture.http_status is None and capture.complete
        assert capture.content_type == "text/html"
    assert fragments and all(f.source_url == GONE for f in fragments)
    records = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
               for r in ArchiveIterator(io.BytesIO(rt.stores["local"].get(warc.sha256)))]
    assert records[1] == ("resource", GONE, article_html(seed_names()[0]))
    assert rt.stores["ipfs"].get(f"{capture.cid}/index.html") == article_html(seed_names()[0])


def test_api_upload_of_a_text_file_makes_fragments(client, archivist_token):
    auth = {"Authorization": f"Bearer {archivist_token}"}
    sid = client.post("/api/sources", json={"url": GONE}, headers=auth).get_json()["id"]
    text = seed_text(seed_names()[2]).encode()
    response = client.post(
        f"/api/sources/{sid}/documents",
        data={"file": (io.BytesIO(text), "article.txt")},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["content_type"] == "text/plain" and body["complete"] is True
    offline = client.get(f"/captures/{body['id']}/files/offline.html")
    assert offline.mimetype == "text/html" and b"<p>" in offline.data
    captures = client.get(f"/api/sources/{sid}/captures").get_json()["items"]
    assert captures[0]["id"] == body["id"]


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("scan.pdf", b"%PDF-1.4 ...", "HTML"),
        ("photo.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        ("empty.txt", b"   \n", "empty"),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_stored(app, client, archivist_token, name, data, message):
    auth = {"Authorization": f"Bearer {archivist_token}"}
    sid = client.post("/api/sources", json={"url": GONE}, headers=auth).get_json()["id"]
    response = client.post(
        f"/api/sources/{sid}/documents",
        data={"file": (io.BytesIO(data), name)},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and message in response.get_json()["error"]
    with app.extensions["samizdat"].Session() as session:
        assert session.scalars(select(Capture)).all() == []


def test_document_upload_needs_an_archivist(client):
    assert client.post("/api/sources/1/documents").status_code == 401
