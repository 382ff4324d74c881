"""Readers see the proof: a capture's "Verify and take away" section and a fragment's page show
its log entry, an inclusion proof that recomputes the checkpoint's root, the checkpoint as
published with its cosignature, the time-stamps over it, and the offline command; a missing or
corrupt log says the proof is unavailable instead of failing the page."""

from __future__ import annotations

import base64
import hashlib
import re
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from fragments.curation import Reviewer, review
from fragments.models import APPROVED, Fragment
from provenance.appender import append_captures
from provenance.cosignature import CosignatureSigner, add_cosignatures
from samizdat.app import create_app
from tests.browser.conftest import serve
from tests.provenance.capturing import capture_and_download
from tests.provenance.tsa import OpenSSLTSA

WITNESS = CosignatureSigner.generate("witness.example/w1")
PHONE = {"width": 360, "height": 740}


def _roots(path: Path, tsa: OpenSSLTSA) -> Path:
    path.write_bytes((tsa.directory / "ca.pem").read_bytes())
    return path


@pytest.fixture
def app(local_settings: Settings, tsa, tmp_path):
    """The app on SQLite and the local store: a loopback TSA, and one witness (1 of 1)."""
    application = create_app(local_settings.replace(
        tsa_urls=tsa.url, tsa_roots=str(_roots(tmp_path / "roots.pem", tsa)),
        witnesses=f"{WITNESS.verifier.vkey} http://127.0.0.1:9/witness"))
    yield application
    application.extensions["samizdat"].dispose()


def _cosign(settings: Settings) -> None:
    """The witness cosigns the published checkpoint, as a real one's answer is added to it."""
    path = settings.log_path / "checkpoint"
    data = path.read_bytes()
    body = data.split(b"\n\n")[0].decode() + "\n"
    path.write_bytes(add_cosignatures(data, [WITNESS.cosign(body, 1_700_000_000)]))


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root_from(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2, written out here so the test checks the page, not our merkle."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise AssertionError("proof too long")
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0, "proof too short"
    return r


def assert_proof_on(html: str) -> str:
    """The page's proof: the entry hashes to the first listed hash, the rest lead to the root the
    shown, signed checkpoint names. Returns the shown checkpoint note."""
    proof = html[html.index('<details class="proof">'):html.index("</details>")]
    index = int(re.search(r"<h4>Entry (\d+)</h4>", proof).group(1))
    entry = unescape(re.search(r'<pre class="entry">(.*?)</pre>', proof, re.S).group(1))
    leaf_shown = bytes.fromhex(re.search(r'<code class="hash leaf">([0-9a-f]{64})</code>', proof).group(1))
    path = [bytes.fromhex(h) for h in re.findall(r'<li><code class="hash">([0-9a-f]{64})</code></li>', proof)]
    note = unescape(re.search(r'<pre class="checkpoint">(.*?)</pre>', proof, re.S).group(1))
    origin, size, root_b64 = note.split("\n")[:3]
    root = base64.b64decode(root_b64)
    leaf = hashlib.sha256(b"\x00" + entry.encode()).digest()
    assert leaf_shown == leaf
    assert _root_from(leaf, index, int(size), path) == root
    assert f'<code class="hash root">{root.hex()}</code>' in proof
    # One byte of the entry changed and the same proof no longer reaches the root.
    forged = hashlib.sha256(b"\x00" + entry.replace('"', "'", 1).encode()).digest()
    assert _root_from(forged, index, int(size), path) != root
    return note, index, int(size), len(path)


def _fragments(app, capture_id: int) -> list[str]:
    with app.extensions["samizdat"].Session() as session:
        return list(session.scalars(select(Fragment.id).where(
            Fragment.capture_id == capture_id).order_by(Fragment.position)))


def _approve(app, ids: list[str]) -> None:
    with app.extensions["samizdat"].Session() as session:
        review(session, ids, APPROVED, Reviewer("ana"))
        session.commit()


def test_a_capture_page_shows_its_entry_proof_checkpoint_cosigner_and_time_stamp(app, site, tmp_path):
    settings = app.extensions["samizdat"].settings
    client = app.test_client()
    capture_id = capture_and_download(app, client, site, tmp_path / "download")
    assert append_captures(app.extensions["samizdat"]).size == 1
    # More entries after it (approvals), so that its proof has hashes to climb.
    _approve(app, _fragments(app, capture_id)[:4])
    size = append_captures(app.extensions["samizdat"]).size
    assert size == 5
    _cosign(settings)
    # A valid cosignature by a witness the archive does not list is published but not claimed.
    stranger = CosignatureSigner.generate("stranger.example/w")
    data = (settings.log_path / "checkpoint").read_bytes()
    body = data.split(b"\n\n")[0].decode() + "\n"
    (settings.log_path / "checkpoint").write_bytes(add_cosignatures(data, [stranger.cosign(body)]))

    html = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    note, index, shown_size, climbed = assert_proof_on(html)
    assert (index, shown_size, climbed) == (0, 5, 3)
    assert note == (settings.log_path / "checkpoint").read_text()
    assert f"\u2014 {WITNESS.name} " in note  # the cosignature line, as published
    assert "Cosigned by <code>witness.example/w1</code> at <time datetime=\"2023-11-14T22:13:20Z\">" in html
    assert "Cosigned by <code>stranger.example/w</code>" not in html
    assert re.search(r"Time-stamped by CN=Samizdat test TSA, serial \d+ at <time datetime=\"20", html)
    log_url = f"{settings.public_url.rstrip('/')}/log"
    assert f'<a href="{log_url}/timestamp/5/0.tsr" download>' in html
    token = client.get("/log/timestamp/5/0.tsr")
    assert token.status_code == 200 and token.data == (settings.log_path / "timestamp/5/0.tsr").read_bytes()
    # The command checks the witness policy and the time-stamps, whose roots the reader brings.
    command = unescape(re.search(r'<pre class="command">(.*?)</pre>', html, re.S).group(1))
    assert command.startswith("python -m provenance.verify FOLDER --log ")
    assert f"--witness {WITNESS.verifier.vkey} --quorum 1 --tsa-root ROOTS.pem" in command
    assert "ROOTS.pem</code>" in html
    # In Vietnamese, the same proof with its words translated.
    vi = client.get(f"/captures/{capture_id}/?lang=vi").get_data(as_text=True)
    assert "<summary>Bằng chứng</summary>" in vi
    assert "Được <code>witness.example/w1</code> đồng ký lúc" in vi
    assert "Được CN=Samizdat test TSA, serial" in vi


def test_a_fragment_page_shows_its_logged_approval_and_is_not_found_until_logged(app, site, tmp_path):
    settings = app.extensions["samizdat"].settings
    client = app.test_client()
    capture_id = capture_and_download(app, client, site, tmp_path / "download")
    first, second, *_ = _fragments(app, capture_id)
    _approve(app, [first])
    append_captures(app.extensions["samizdat"])
    _cosign(settings)
    _approve(app, [second])  # approved, but no pass has logged it yet
    with app.extensions["samizdat"].Session() as session:
        second_text = session.get(Fragment, second).text

    html = client.get(f"/fragments/{first}").get_data(as_text=True)
    assert html.count("Its approval is entry 1 of the public log") == 1
    note, index, size, _ = assert_proof_on(html)
    assert (index, size) == (1, 2)  # after the capture
    entry = unescape(re.search(r'<pre class="entry">(.*?)</pre>', html, re.S).group(1))
    assert first in entry and '"approved"' in entry and "ana" not in entry
    assert "Cosigned by <code>witness.example/w1</code>" in html
    assert "Time-stamped by CN=Samizdat test TSA" in html
    command = unescape(re.search(r'<pre class="command">(.*?)</pre>', html, re.S).group(1))
    assert command.startswith(f"python -m provenance.verify --fragment {first} "
                              f"--archive {settings.public_url.rstrip('/')} --log ")
    assert "--tsa-root ROOTS.pem" in command

    # Not in the log, not public (issue #15): a 404 as for an unapproved fragment, no text.
    pending = client.get(f"/fragments/{second}")
    assert pending.status_code == 404
    assert second_text not in pending.get_data(as_text=True)


@pytest.mark.parametrize("damage", ["garbage", "bad signature", "missing", "tile gone"])
def test_a_missing_or_corrupt_log_says_the_proof_is_unavailable_and_never_fails_the_page(
        app, site, tmp_path, damage):
    settings = app.extensions["samizdat"].settings
    client = app.test_client()
    capture_id = capture_and_download(app, client, site, tmp_path / "download")
    [first, *_] = _fragments(app, capture_id)
    _approve(app, [first])
    append_captures(app.extensions["samizdat"])
    checkpoint = settings.log_path / "checkpoint"
    if damage == "garbage":
        checkpoint.write_bytes(b"\xff\x00 not a note" * 100)
    elif damage == "bad signature":
        data = bytearray(checkpoint.read_bytes())
        data[-10] = ord("A") if data[-10] != ord("A") else ord("B")
        checkpoint.write_bytes(bytes(data))
    elif damage == "missing":
        checkpoint.unlink()
    else:
        for tile in (settings.log_path / "tile").rglob("*"):
            if tile.is_file():
                tile.unlink()
    for path in (f"/captures/{capture_id}/", f"/fragments/{first}"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert "The proof is unavailable right now" in html, path
        assert '<pre class="entry">' not in html
        assert '<pre class="command">' in html  # the offline check still works from elsewhere


def test_the_capture_and_fragment_pages_with_the_proof_open_fit_a_360_px_screen(
        app, site, tmp_path, chromium):
    settings = app.extensions["samizdat"].settings
    capture_id = capture_and_download(app, app.test_client(), site, tmp_path / "download")
    append_captures(app.extensions["samizdat"])
    fragment_ids = _fragments(app, capture_id)[:3]
    _approve(app, fragment_ids)
    append_captures(app.extensions["samizdat"])
    _cosign(settings)
    live = serve(app)
    context = chromium.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        for path in (f"/captures/{capture_id}/", f"/fragments/{fragment_ids[1]}"):
            page.goto(f"http://127.0.0.1:{live.server.server_port}{path}")
            page.click("details.proof summary")
            assert page.locator("details.proof pre.checkpoint").is_visible()
            assert page.locator("details.proof ol.hashes li").count() >= 1
            assert page.evaluate("() => window.innerWidth") == 360
            wider = page.evaluate("() => Math.max(document.documentElement.scrollWidth,"
                                  " document.body.scrollWidth) - window.innerWidth")
            assert wider <= 0, f"{path} is {wider} px wider than a 360 px screen"
    finally:
        context.close()
        live.server.shutdown()
        live.server.server_close()
