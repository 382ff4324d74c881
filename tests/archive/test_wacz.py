"""WACZ export: a real source captured twice, exported by the CLI and the download routes, then
checked with the webrecorder project's own tools (py-wacz's validator, cdxj-indexer) and by
reading every index entry back out of the WARCs inside the ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import surt
from cdxj_indexer.main import CDXJIndexer
from flask import Flask
from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator

from archive.wacz_signing import load_wacz_signer, verify_signed_data
from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat import migrate
from samizdat.app import create_app
from tests.archive.changing_site import ChangingSite
from tests.conftest import make_settings


@dataclass
class Archived:
    """The module's archive: the app, the changing site, and the source captured twice."""

    app: Flask
    site: ChangingSite
    source_id: int
    url: str
    capture_ids: list[int]


@pytest.fixture(scope="module")
def archived(tmp_path_factory) -> Archived:
    """One source of collection "vietnam" captured twice with different text (SQLite, local
    store: the export reads the spool only). Built once: the tests only read it."""
    tmp = tmp_path_factory.mktemp("wacz")
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    app = create_app(make_settings(tmp, url))
    rt = app.extensions["samizdat"]
    site = ChangingSite(tmp / "site")
    page = site.publish("Bài viết bị chặn", "The first version of the censored article. " * 8)
    with rt.Session() as session:
        source_id = add_source(session, page, 60, collection="vietnam").source.id
        session.commit()
    ids = [capture_source(rt, source_id).capture_id]
    site.publish("Bài viết bị chặn", "The second, edited version of the article. " * 8)
    ids.append(capture_source(rt, source_id).capture_id)
    # A failed capture of the same source: it must not be exported.
    (tmp / "site" / "article.html").unlink()
    assert capture_source(rt, source_id).status == "failed"
    yield Archived(app, site, source_id, page, ids)
    site.close()
    rt.dispose()


def export(archived: Archived, *args: str):
    """Run `flask archive export-wacz ARGS` in-process."""
    return archived.app.test_cli_runner().invoke(args=["archive", "export-wacz", *args])


@pytest.fixture(scope="module")
def source_wacz(archived, tmp_path_factory) -> Path:
    """The source exported once by the CLI."""
    out = tmp_path_factory.mktemp("out") / "source.wacz"
    result = export(archived, "--source", str(archived.source_id), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 2 captures" in result.output
    return out


def validate(path: Path) -> subprocess.CompletedProcess:
    """py-wacz's validator (`wacz validate`), as a reader's tool would run it."""
    # The console script, not `python -m wacz`: py-wacz 0.6.0's __main__ drops main()'s result,
    # so that form exits 0 even when validation fails.
    return subprocess.run(
        [str(Path(sys.executable).parent / "wacz"), "validate", "-f", str(path)],
        capture_output=True, text=True, timeout=120,
    )


def index_lines(data: bytes) -> list[tuple[str, str, dict]]:
    """(urlkey, timestamp, fields) of every CDXJ line."""
    out = []
    for line in data.decode("utf-8").splitlines():
        urlkey, timestamp, fields = line.split(" ", 2)
        out.append((urlkey, timestamp, json.loads(fields)))
    return out


def test_an_exported_source_passes_py_wacz_validation(source_wacz):
    result = validate(source_wacz)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout


def test_the_warcs_inside_hold_every_capture_of_the_page_and_its_requisites(archived, source_wacz):
    with zipfile.ZipFile(source_wacz) as zf:
        warcs = {n: zf.read(n) for n in zf.namelist() if n.startswith("archive/")}
        # Stored, not deflated, as WACZ asks: replay tools read records by offset.
        assert all(zf.getinfo(n).compress_type == zipfile.ZIP_STORED for n in warcs)
    assert sorted(warcs) == [f"archive/capture-{i}.warc.gz" for i in archived.capture_ids]
    # Index the WARCs with cdxj-indexer, as pywb's wb-manager or ReplayWeb.page would.
    found: dict[str, set[str]] = {}
    for name, data in warcs.items():
        out = io.StringIO()
        CDXJIndexer(out, [io.BytesIO(data)], filename=name).process_all()
        for urlkey, _ts, fields in index_lines(out.getvalue().encode()):
            found.setdefault(urlkey, set()).add(fields["filename"])
    for path in ("/article.html", "/site.css", "/photo.png"):
        assert found[surt.surt(archived.site.url(path))] == set(warcs), path


def test_every_index_entry_points_at_its_record_inside_the_zip(archived, source_wacz):
    with zipfile.ZipFile(source_wacz) as zf:
        lines = index_lines(zf.read("indexes/index.cdx"))
        members = {n: zf.read(n) for n in zf.namelist()}
    assert [line[:2] for line in lines] == sorted(line[:2] for line in lines)  # sorted CDXJ
    urls = set()
    for urlkey, timestamp, fields in lines:
        # filename is relative to archive/, where WACZ readers look it up.
        data = members["archive/" + fields["filename"]]
        start, length = int(fields["offset"]), int(fields["length"])
        record = next(iter(ArchiveIterator(io.BytesIO(data[start : start + length]))))
        assert record.rec_headers.get_header("WARC-Target-URI") == fields["url"]
        assert record.rec_headers.get_header("WARC-Date").replace("-", "").replace(
            ":", "").replace("T", "")[:14] == timestamp
        assert surt.surt(fields["url"]) == urlkey
        urls.add(fields["url"])
    assert urls == {archived.site.url(p) for p in ("/article.html", "/site.css", "/photo.png")}


def test_pages_list_each_capture_at_the_date_of_its_record(archived, source_wacz):
    with zipfile.ZipFile(source_wacz) as zf:
        header, *pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").splitlines()]
        index = index_lines(zf.read("indexes/index.cdx"))
    assert header["format"] == "json-pages-1.0" and header["id"] == "pages"
    assert [p["id"] for p in pages] == [f"capture-{i}" for i in archived.capture_ids]
    page_key = surt.surt(archived.url)
    for page, capture_id in zip(pages, archived.capture_ids):
        assert page["url"] == archived.url
        ts = datetime.fromisoformat(page["ts"].replace("Z", "+00:00"))
        entry = next(
            fields for key, stamp, fields in index
            if key == page_key and fields["filename"] == f"capture-{capture_id}.warc.gz"
        )
        stamp = next(s for k, s, f in index if f is entry)
        assert ts.strftime("%Y%m%d%H%M%S") == stamp  # replay finds the page at exactly this ts


def test_datapackage_lists_every_file_with_its_hash_and_size(source_wacz):
    with zipfile.ZipFile(source_wacz) as zf:
        package_bytes = zf.read("datapackage.json")
        package = json.loads(package_bytes)
        digest = json.loads(zf.read("datapackage-digest.json"))
        members = {n: zf.read(n) for n in zf.namelist()}
    assert package["profile"] == "data-package"
    assert package["wacz_version"] == "1.1.1"
    assert package["title"] and package["software"] and package["created"].endswith("Z")
    listed = {r["path"]: r for r in package["resources"]}
    assert set(listed) == set(members) - {"datapackage.json", "datapackage-digest.json"}
    for path, resource in listed.items():
        assert resource["hash"] == "sha256:" + hashlib.sha256(members[path]).hexdigest(), path
        assert resource["bytes"] == len(members[path])
        assert resource["name"] == path.rsplit("/", 1)[-1]
    assert digest["hash"] == "sha256:" + hashlib.sha256(package_bytes).hexdigest()


def test_a_collection_exports_its_sources_captures(archived, tmp_path):
    out = tmp_path / "vietnam.wacz"
    result = export(archived, "--collection", "vietnam", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert validate(out).returncode == 0
    with zipfile.ZipFile(out) as zf:
        assert len([n for n in zf.namelist() if n.startswith("archive/")]) == 2


def assert_one_line_error(result, *words: str) -> None:
    """A failed command: exit status not 0 and one line saying why."""
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--source", "1", "--collection", "vietnam"], ["exactly one"]),
        ([], ["exactly one"]),
        (["--collection", "nowhere"], ["no collection named 'nowhere'"]),
        (["--source", "999"], ["no source with id 999"]),
        (["--source", "abc"], ["whole number"]),
        (["--source", "99999999999999999999"], ["whole number"]),
    ],
)
def test_bad_options_fail_in_one_line_and_write_nothing(archived, tmp_path, args, words):
    out = tmp_path / "out.wacz"
    assert_one_line_error(export(archived, *args, "-o", str(out)), *words)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_output_option_fails_in_one_line(archived):
    assert_one_line_error(export(archived, "--source", str(archived.source_id)), "-o FILE")


def test_an_unwritable_output_fails_in_one_line_and_leaves_nothing(archived, tmp_path):
    missing_dir = tmp_path / "no" / "such" / "dir" / "out.wacz"
    assert_one_line_error(
        export(archived, "--source", str(archived.source_id), "-o", str(missing_dir)),
        "cannot write",
    )
    a_dir = tmp_path / "a-directory"
    a_dir.mkdir()
    assert_one_line_error(
        export(archived, "--source", str(archived.source_id), "-o", str(a_dir)), "directory"
    )
    assert list(tmp_path.iterdir()) == [a_dir] and list(a_dir.iterdir()) == []


def test_a_source_with_only_failed_captures_has_nothing_to_export(archived, tmp_path):
    rt = archived.app.extensions["samizdat"]
    with rt.Session() as session:
        gone = archived.site.url("/gone.html")
        source_id = add_source(session, gone, 60, collection="gone").source.id
        session.commit()
    assert capture_source(rt, source_id).status == "failed"
    out = tmp_path / "x.wacz"
    assert_one_line_error(export(archived, "--source", str(source_id), "-o", str(out)), "no stored")
    assert_one_line_error(export(archived, "--collection", "gone", "-o", str(out)), "no stored")
    assert not out.exists()
    client = archived.app.test_client()
    assert client.get(f"/archive/{source_id}/export.wacz").status_code == 404
    assert client.get("/archive/collections/gone/export.wacz").status_code == 404


@pytest.mark.parametrize(
    "path", ["/archive/{id}/export.wacz", "/archive/collections/vietnam/export.wacz"]
)
def test_the_download_is_a_valid_wacz_without_a_cookie(archived, tmp_path, path):
    response = archived.app.test_client().get(path.format(id=archived.source_id))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=samizdat-")
    assert response.headers["Content-Disposition"].endswith(".wacz")
    assert "Set-Cookie" not in response.headers
    assert response.content_length == len(response.get_data()) > 0
    out = tmp_path / "download.wacz"
    out.write_bytes(response.get_data())
    response.close()
    assert validate(out).returncode == 0
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert {f"archive/capture-{i}.warc.gz" for i in archived.capture_ids} <= set(zf.namelist())


@pytest.mark.parametrize(
    "path",
    ["/archive/999/export.wacz", "/archive/collections/nowhere/export.wacz",
     "/archive/collections/" + "x" * 10_000 + "/export.wacz", "/archive/99999999999/export.wacz"],
)
def test_unknown_downloads_are_a_friendly_404(archived, path):
    response = archived.app.test_client().get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Traceback" not in response.get_data(as_text=True)


def test_captures_in_the_export_are_the_successful_ones(archived, source_wacz):
    with archived.app.extensions["samizdat"].Session() as session:
        statuses = sorted(
            session.scalars(select(Capture.status).where(Capture.source_id == archived.source_id))
        )
    assert statuses == ["failed", "ok", "ok"]
    with zipfile.ZipFile(source_wacz) as zf:
        assert len([n for n in zf.namelist() if n.startswith("archive/")]) == 2


def test_a_warc_missing_from_the_spool_fails_cleanly_half_way(archived, tmp_path):
    rt = archived.app.extensions["samizdat"]
    capture_ids = []
    # Two pages of one collection: the first is exported, then the second's WARC is missing.
    for name in ("kept", "lost"):
        text = f"The {name} page of the collection."
        url = archived.site.publish(name, text, name=f"{name}.html")
        with rt.Session() as session:
            source_id = add_source(session, url, 60, collection="half").source.id
            session.commit()
        capture_ids.append(capture_source(rt, source_id).capture_id)
    with rt.Session() as session:
        (warc,) = [p for p in session.get(Capture, capture_ids[1]).parts if p.role == "warc"]
        sha256 = warc.sha256
    Path(rt.stores["local"].url(sha256).removeprefix("file://")).unlink()  # the disk lost it
    out = tmp_path / "half.wacz"
    result = export(archived, "--collection", "half", "-o", str(out))
    assert result.exit_code == 1
    # The progress bar's label, then one line saying what is missing.
    assert result.output.strip().splitlines()[-1] == f"Error: no local blob {sha256}"
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary sibling
    response = archived.app.test_client().get(
        f"/archive/{source_id}/export.wacz", headers={"Accept": "text/html"}
    )
    assert response.status_code == 503 and response.mimetype == "text/html"


# --- Signatures (WACZ Signing and Verification 0.1.0, anonymous mode) ---

# The anonymous-mode check of ReplayWeb.page (wabac.js src/wacz/certutils.ts), in WebCrypto.
WEBCRYPTO_VERIFY = """async (signed) => {
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey(
    "spki", bytes(signed.publicKey), {name: "ECDSA", namedCurve: "P-384"}, true, ["verify"]);
  return crypto.subtle.verify({name: "ECDSA", hash: "SHA-256"}, key, bytes(signed.signature),
                              new TextEncoder().encode(signed.hash));
}"""


def webcrypto_verifies(chromium, archived: Archived, signed: dict) -> bool:
    """Whether Chromium's WebCrypto accepts ``signed`` the way ReplayWeb.page checks it."""
    page = chromium.new_page()
    try:
        # WebCrypto wants a secure context: a loopback origin is one, about:blank is not.
        page.goto(archived.site.url("/site.css"))
        return page.evaluate(WEBCRYPTO_VERIFY, signed)
    finally:
        page.close()


def digest_of(path: Path) -> dict:
    """The WACZ's datapackage-digest.json."""
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("datapackage-digest.json"))


def rewritten(path: Path, out: Path, **members: bytes) -> Path:
    """A copy of the WACZ at ``path`` with ``members`` replaced, as a forger would make it."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, members.get(info.filename, src.read(info.filename)))
    return out


@pytest.fixture(scope="module")
def published_key(archived) -> str:
    """The public key the archive publishes at /archive/wacz-key.json."""
    response = archived.app.test_client().get("/archive/wacz-key.json")
    assert response.status_code == 200
    return response.get_json()["publicKey"]


def test_an_export_is_signed_by_the_published_key_as_replayweb_page_checks_it(
    archived, source_wacz, published_key, chromium
):
    digest = digest_of(source_wacz)
    with zipfile.ZipFile(source_wacz) as zf:
        package = zf.read("datapackage.json")
    signed = digest["signedData"]
    assert digest["hash"] == signed["hash"] == "sha256:" + hashlib.sha256(package).hexdigest()
    assert signed["created"] == json.loads(package)["created"]
    assert signed["publicKey"] == published_key
    assert verify_signed_data(signed, published_key)
    assert webcrypto_verifies(chromium, archived, signed) is True
    # py-wacz checks the digest and the signature's date, and sees the signature.
    result = validate(source_wacz)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Has signature" in result.stdout
    # The key was made on first use, readable by its owner only.
    key_path = archived.app.extensions["samizdat"].settings.wacz_signing_key_path
    assert key_path.stat().st_mode & 0o777 == 0o600


def test_a_download_is_signed_by_the_same_key(archived, published_key, tmp_path):
    response = archived.app.test_client().get(f"/archive/{archived.source_id}/export.wacz")
    assert response.status_code == 200
    out = tmp_path / "download.wacz"
    out.write_bytes(response.data)
    assert verify_signed_data(digest_of(out)["signedData"], published_key)


def test_a_datapackage_altered_after_signing_is_refused(archived, source_wacz, published_key,
                                                       tmp_path, chromium):
    with zipfile.ZipFile(source_wacz) as zf:
        package = json.loads(zf.read("datapackage.json"))
    package["title"] = "Samizdat: words the page never said"
    forged = json.dumps(package, indent=2).encode()
    # Left as it was, the digest no longer matches: py-wacz refuses the package.
    naive = rewritten(source_wacz, tmp_path / "naive.wacz", **{"datapackage.json": forged})
    result = validate(naive)
    assert result.returncode == 1, result.stdout
    assert "hash mismatch" in result.stdout
    # With the digest recomputed, only the signature (over the old hash) gives it away.
    digest = digest_of(source_wacz)
    new_hash = "sha256:" + hashlib.sha256(forged).hexdigest()
    digest["hash"] = new_hash
    digest["signedData"]["hash"] = new_hash
    careful = rewritten(source_wacz, tmp_path / "careful.wacz", **{
        "datapackage.json": forged, "datapackage-digest.json": json.dumps(digest).encode()})
    signed = digest_of(careful)["signedData"]
    assert not verify_signed_data(signed, published_key)
    assert webcrypto_verifies(chromium, archived, signed) is False


def test_a_signature_by_another_key_is_refused(source_wacz, published_key, tmp_path):
    other = load_wacz_signer(tmp_path / "other.pem")
    digest = digest_of(source_wacz)
    theirs = other.signed_data(digest["hash"], digest["signedData"]["created"], "forger")
    # Their signature with our key claimed, and their signature with their own key.
    assert not verify_signed_data({**theirs, "publicKey": published_key})
    assert verify_signed_data(theirs)
    assert not verify_signed_data(theirs, published_key)
    # Malformed signed data is refused, not an error.
    assert not verify_signed_data({**theirs, "signature": "not base64!"})
    assert not verify_signed_data({"hash": digest["hash"]})
