"""The widget and the provenance log, in Chromium against the real app, S3 and IPFS: a fragment is
shown only when its approval is in the log under a checkpoint the pinned policy accepts."""

from __future__ import annotations

import dataclasses
import gzip
import html
import io
import hashlib
import json
import re
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from embed.packs import MAX_REQUEST_BYTES, canonical_json, signed_envelope
from embed.publish import (
    build_embed_js,
    publish_embed,
    subresource_integrity,
    versioned_script_name,
    witness_policy,
)
from embed.signing import load_or_create_signer
from fragments.models import Fragment
from provenance import merkle
from provenance.appender import append_log, log_signer, published_verifier_key
from provenance.freshness import checkpoint_facts, extension_lines
from provenance.keyring import revoke, rotate
from provenance.tiles import DirectoryFetcher, TileReader
from provenance.verify import main as verify_main
from provenance.cosignature import CosignatureSigner, add_cosignatures
from provenance.decisions import logged_approvals
from provenance.merkle import EMPTY_ROOT
from provenance.note import Checkpoint, Ed25519Signer, Signature, parse_note, sign_checkpoint, sign_note
from samizdat.errors import StorageError
from tests.embed.conftest import add_fragments
from samizdat import migrate
from tests.embed.test_widget_browser import STATIC, blog, browser, live, serving, shown  # noqa: F401 (fixtures)


@dataclass
class Logged:
    """The live app whose approvals are in its log, packs republished with proofs."""

    live: object
    logged: dict
    script: str  # the embed.js that pins the log key
    integrity: str


def log_approvals(live) -> dict:
    """The approvals in the app's log: every one, since each publish runs a log pass first."""
    rt = live.app.extensions["samizdat"]
    with rt.Session() as session:
        logged = logged_approvals(session)
    assert len(logged) == len(live.texts) > 0
    return logged


def unpinned_script(live) -> tuple[str, str]:
    """An embed.js pinning no log key, as snippets pasted before the log name one (published
    beside the others under its versioned name)."""
    script = build_embed_js(load_or_create_signer(live.settings.embed_signing_key_path), live.settings)
    name = versioned_script_name(script)
    (live.settings.public_path / name).write_bytes(script)
    return name, subresource_integrity(script)


def republish(live) -> tuple[str, str]:
    rt = live.app.extensions["samizdat"]
    with rt.Session() as session:
        report = publish_embed(session, live.settings)
    assert not report.failures and report.log
    return report.embed_js_versioned, report.embed_js_integrity


@pytest.fixture
def logged(live):
    """A live app whose approvals are logged, for tests that change it."""
    assert live.report.log
    return Logged(live, log_approvals(live), live.script, live.report.embed_js_integrity)


@pytest.fixture(scope="module")
def logged_once(tmp_path_factory, s3_server, ipfs_node, site):
    """The same, set up once for the tests that only read it (forgeries are browser routes)."""
    tmp = tmp_path_factory.mktemp("logged")
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    with serving(tmp, url, s3_server, ipfs_node, f"samizdat-{uuid.uuid4().hex[:16]}", site) as live:
        assert live.report.log
        yield Logged(live, log_approvals(live), live.script, live.report.embed_js_integrity)


def snippet(live, script, integrity):
    return (STATIC + f'<script async src="{live.url}/embed/{script}" integrity="{integrity}" '
            'crossorigin="anonymous"></script>')


def pack_files(live):
    """The published index of "all" (envelope and payload) and its one shard's fragments."""
    envelope = (live.settings.public_path / "packs/all/index.json").read_bytes()
    index = json.loads(json.loads(envelope)["payload"])
    shard = json.loads((live.settings.public_path / f"packs/shards/{index['shards'][0]['sha256']}.json")
                       .read_bytes())
    return index, shard["fragments"]


def forge(context, live, fragments, checkpoint=None, signer=None, **changes):
    """Serve, from every origin, an index re-signed with the real pack key (a stolen key; or
    ``signer``) naming one shard of ``fragments``; ``checkpoint`` replaces the index's checkpoint
    note, ``changes`` other fields of the index."""
    index, _ = pack_files(live)
    shard = canonical_json({"format": "samizdat-pack/1", "fragments": fragments})
    digest = hashlib.sha256(shard).hexdigest()
    index.update(count=len(fragments), shards=[{"sha256": digest, "count": len(fragments), "bytes": len(shard)}])
    index.update(changes)
    if checkpoint is not None:
        index["checkpoint"] = checkpoint
    signer = signer or load_or_create_signer(live.settings.embed_signing_key_path)
    envelope = signed_envelope([signer], index)
    cors = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
    context.route(re.compile(r".*/all/index\.json$"),
                  lambda route: route.fulfill(body=envelope, content_type="application/json", headers=cors))
    context.route(re.compile(rf".*/shards/{digest}\.json$"),
                  lambda route: route.fulfill(body=shard, content_type="application/json", headers=cors))


def open_view(browser, url, setup=None, *, refused=False):
    """One page view in a fresh context: (what the widget shows, or the written-in fallback's text
    when ``refused``; the console warnings). A refused view waits for the widget to give up."""
    context = browser.new_context()
    if setup:
        setup(context)
    page = context.new_page()
    warnings = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    if refused:
        # Generous: a loaded machine may take seconds per origin; the widget tries four.
        with page.expect_console_message(lambda m: "every origin failed" in m.text, timeout=60000):
            page.goto(url)
        assert page.locator(".samizdat-embed").count() == 0
        got = page.locator("blockquote.samizdat-fragment p").first.text_content()
    else:
        page.goto(url)
        got = shown(page)["text"]
    context.close()
    return got, warnings



def logged_page(logged, blog):
    return blog.page(snippet(logged.live, logged.script, logged.integrity))


def test_a_logged_approved_fragment_is_shown_with_its_proof_checked(browser, logged_once, blog):
    logged = logged_once
    live = logged.live
    index, fragments = pack_files(live)
    assert index["checkpoint"] == (live.settings.log_path / "checkpoint").read_text()
    assert {f["id"] for f in fragments} == set(logged.logged)
    assert all(f["log"]["entry"] == logged.logged[f["id"]].entry.decode() for f in fragments)
    got, warnings = open_view(browser, logged_page(logged, blog))
    assert got in live.texts
    assert warnings == []
    # The self-host copy of embed.js pins the same log key as the published one.
    archive = zipfile.ZipFile(io.BytesIO(live.app.test_client().get("/embed/selfhost.zip").data))
    assert published_verifier_key(live.settings.log_path) in archive.read("samizdat/embed.js").decode()


def test_an_old_snippet_without_a_pinned_log_key_keeps_working_on_packs_with_proofs(browser, logged_once, blog):
    live = logged_once.live
    name, integrity = unpinned_script(live)
    assert '"quorum":' not in (live.settings.public_path / name).read_text()  # no CONFIG.log
    got, warnings = open_view(browser, blog.page(snippet(live, name, integrity)))
    assert got in live.texts and warnings == []


def test_the_cached_pack_is_proven_again_when_every_origin_fails(browser, logged_once, blog):
    live = logged_once.live
    context = browser.new_context()
    url = logged_page(logged_once, blog)
    page = context.new_page()
    page.goto(url)
    shown(page)
    context.route(re.compile(r".*/(packs|ipfs|ipns)/.*"), lambda route: route.abort())
    second = context.new_page()
    warnings = []
    second.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    second.goto(url)
    assert shown(second)["text"] in live.texts
    assert not any("log" in w or "checkpoint" in w for w in warnings), warnings
    context.close()


def test_the_witness_policy_is_read_from_settings_of_any_shape():
    w1, w2 = CosignatureSigner.generate("w1.example"), CosignatureSigner.generate("w2.example")
    raw = f"{w1.verifier.vkey} https://w1.example/\n{w2.verifier.vkey} https://w2.example/"
    both = [w1.verifier.vkey, w2.verifier.vkey]
    # The witness helper's parsed settings, then raw values (quorum 0: one of any listed).
    parsed = SimpleNamespace(witness_list=[(w1.verifier.vkey, "https://w1.example/"),
                                           (w2.verifier.vkey, "https://w2.example/")], witness_quorum_count=2)
    assert witness_policy(parsed) == (both, 2)
    assert witness_policy(SimpleNamespace(witnesses=raw, witness_quorum=0)) == (both, 1)
    assert witness_policy(SimpleNamespace(witnesses=raw.replace("\n", ","), witness_quorum=5)) == (both, 2)
    assert witness_policy(SimpleNamespace()) == ([], 0)  # settings from before the witnesses


def test_text_changed_behind_the_logs_back_is_shown_nowhere(logged):
    live = logged.live
    rt = live.app.extensions["samizdat"]
    kept = sorted(logged.logged)[0]
    with rt.Session() as session:
        for fragment_id in logged.logged:
            if fragment_id != kept:
                session.get(Fragment, fragment_id).text = f"Words the log never saw {fragment_id}"
        session.commit()
        kept_text = session.get(Fragment, kept).text
    republish(live)
    _, fragments = pack_files(live)
    assert [f["id"] for f in fragments] == [kept]
    # Nor in the written-in fallbacks: the frame page's and the builder's snippet.
    frame = (live.settings.public_path / "frame.html").read_text()
    builder = live.app.test_client().get("/embed").get_data(as_text=True)
    for page in (frame, builder):
        assert "Words the log never saw" not in page
        # Unescaped: Jinja writes a quotation mark as &#34;, the builder as &quot; (the kept
        # fragment is whichever id sorts first, so sometimes one with quotation marks).
        assert kept_text[:60] in html.unescape(page)


def forged_fragment(genuine, text, log=None):
    """A fragment a thief of the pack key would like shown, with ``log`` as its claimed proof."""
    fake = {**genuine, "id": "f" * 32, "text": text}
    if log is None:
        fake.pop("log")
    else:
        fake["log"] = log
    return fake


def test_a_stolen_pack_key_alone_cannot_put_words_on_the_page(browser, logged_once, blog):
    logged = logged_once
    live = logged.live
    _, fragments = pack_files(live)
    genuine = fragments[0]
    lie = "Forged words nobody archived"
    # Unlogged; or riding on a genuine fragment's entry and proof (under its id or another).
    forgeries = [forged_fragment(genuine, lie),
                 forged_fragment(genuine, lie, genuine["log"]),
                 {**genuine, "text": lie}]
    url = logged_page(logged, blog)
    got, warnings = open_view(browser, url, lambda c: forge(c, live, forgeries), refused=True)
    assert got == "STATIC GENUINE FRAGMENT"
    assert any("no logged approval" in w for w in warnings), warnings
    assert any("its text is not the logged one" in w for w in warnings), warnings
    # Mixed into a genuine shard, the forgeries are passed over for the proven fragments.
    for _ in range(3):
        got, warnings = open_view(browser, url, lambda c: forge(c, live, forgeries + fragments))
        assert got in live.texts and got != lie


def test_a_checkpoint_signed_by_another_key_is_refused(browser, logged_once, blog):
    logged = logged_once
    live = logged.live
    _, fragments = pack_files(live)
    real = (live.settings.log_path / "checkpoint").read_bytes()
    text = parse_note(real).text
    impostor = Ed25519Signer(live.settings.log_origin_name, Ed25519PrivateKey.generate())
    other_key = sign_note(text, [impostor]).decode()
    # The log key's name and key ID, with another key's signature.
    real_sig = parse_note(real).signatures[0]
    bad_sig = sign_note(text, [], keep=[Signature(real_sig.name, real_sig.key_id,
                                                  impostor.sign(text.encode()).signature)]).decode()
    url = logged_page(logged, blog)
    for note, reason in ((other_key, "not signed by the log key"), (bad_sig, "bad signature by")):
        got, warnings = open_view(browser, url, lambda c, n=note: forge(c, live, fragments, n), refused=True)
        assert got == "STATIC GENUINE FRAGMENT"
        assert any(reason in w for w in warnings), warnings


def test_a_bad_proof_hash_is_refused(browser, logged_once, blog):
    logged = logged_once
    live = logged.live
    _, fragments = pack_files(live)
    tampered = []
    for f in fragments:
        proof = list(f["log"]["proof"])
        proof[0] = "A" * 43 + "="  # 32 zero bytes: a well-formed hash that leads elsewhere
        tampered.append({**f, "log": {**f["log"], "proof": proof}})
    got, warnings = open_view(browser, logged_page(logged, blog),
                              lambda c: forge(c, live, tampered), refused=True)
    assert got == "STATIC GENUINE FRAGMENT"
    assert any("inclusion proof does not lead to the checkpoint" in w for w in warnings), warnings


def test_a_quorum_of_one_refuses_a_checkpoint_without_a_good_cosignature(browser, logged_once, blog):
    logged = logged_once
    live = logged.live
    witness = CosignatureSigner.generate("witness.example/w1")
    real = (live.settings.log_path / "checkpoint").read_bytes()
    good = add_cosignatures(real, [witness.cosign(parse_note(real).text)])
    line = witness.cosign(parse_note(real).text)
    bad = add_cosignatures(real, [Signature(line.name, line.key_id, line.signature[:-1] + b"\0")])
    # embed.js pinning the log key and one witness, one cosignature needed.
    signer = load_or_create_signer(live.settings.embed_signing_key_path)
    policy = {"key": published_verifier_key(live.settings.log_path),
              "witnesses": [witness.verifier.vkey], "quorum": 1}
    script = build_embed_js(signer, live.settings, log=policy)
    name = versioned_script_name(script)
    (live.settings.public_path / name).write_bytes(script)
    url = blog.page(snippet(live, name, subresource_integrity(script)))
    _, fragments = pack_files(live)
    for note, reason in ((real, "0 of the 1 cosignatures"), (bad, "bad signature by witness.example/w1")):
        got, warnings = open_view(browser, url, lambda c, n=note: forge(c, live, fragments, n.decode()),
                                  refused=True)
        assert got == "STATIC GENUINE FRAGMENT"
        assert any(reason in w for w in warnings), warnings
    got, warnings = open_view(browser, url, lambda c: forge(c, live, fragments, good.decode()))
    assert got in live.texts and warnings == []


def measure(browser, live, url) -> dict:
    """A cold then a warm view in one browser context: the browser's requests for embed files
    (cache hits included) and the requests and body bytes that reached the app."""
    context = browser.new_context()
    figures = {}
    for view in ("cold", "warm"):
        requests_seen = []
        page = context.new_page()
        page.on("request", lambda r: requests_seen.append(r.url) if "/embed/" in r.url else None)
        before = len(live.counter.paths)
        page.goto(url)
        assert shown(page)["text"] in live.texts
        served = live.counter.paths[before:]
        sizes = [(live.settings.public_path / p.removeprefix("/embed/")).stat().st_size for p in served]
        figures[view] = {"requests": len(requests_seen), "served": len(served), "sizes": sizes}
        page.close()
    context.close()
    return figures


def test_requests_stay_under_256_kib_and_a_warm_view_makes_no_more_requests(browser, logged_once, blog):
    live = logged_once.live
    # The same packs read by an embed.js that checks nothing of the log, then by one that does.
    before = measure(browser, live, blog.page(snippet(live, *unpinned_script(live))))
    after = measure(browser, live, blog.page(snippet(live, logged_once.script, logged_once.integrity),
                                             name="logged.html"))
    js = (live.settings.public_path / logged_once.script).read_bytes()
    print(f"\nembed.js {len(js)} bytes, gzip {len(gzip.compress(js, 9))}; before {before}; after {after}")
    assert max(after["cold"]["sizes"]) <= MAX_REQUEST_BYTES
    for view in ("cold", "warm"):
        assert after[view]["requests"] == before[view]["requests"]
        assert after[view]["served"] == before[view]["served"]
    assert after["warm"]["served"] == 0  # the index and shard come from the browser's cache


def test_a_log_that_cannot_be_read_stops_the_publish_instead_of_shipping_unproven_packs(local_app):
    rt = local_app.extensions["samizdat"]
    add_fragments(local_app, 2, logged=False)  # the log is planted below
    log = rt.settings.log_path
    log.mkdir(parents=True)
    name = rt.settings.log_origin_name
    (log / "verifier-key").write_text(Ed25519Signer(name, Ed25519PrivateKey.generate()).verifier.vkey + "\n")
    # A checkpoint signed by some other key than the one published beside it.
    (log / "checkpoint").write_bytes(sign_checkpoint(Checkpoint(name, 0, EMPTY_ROOT),
                                                     Ed25519Signer(name, Ed25519PrivateKey.generate())))
    with rt.Session() as session, pytest.raises(StorageError, match="the provenance log cannot be read"):
        publish_embed(session, rt.settings)
    assert not (rt.settings.public_path / "packs").exists()


def test_an_index_signed_by_a_pack_key_the_checkpoint_names_revoked_is_refused(browser, logged, blog):
    live = logged.live
    settings = live.settings
    stolen = load_or_create_signer(settings.embed_signing_key_path)  # what logged.script pins
    with live.app.extensions["samizdat"].Session() as session:
        rotate(settings, session, "pack")
    revoke(settings, "pack", stolen.key_id)
    republish(live)  # its log pass logs the rotation and the revocation
    note = (settings.log_path / "checkpoint").read_text()
    assert f"\nrevoked pack {stolen.key_id} " in note
    _, fragments = pack_files(live)
    url = logged_page(logged, blog)
    # The thief signs an index with the stolen key over the genuine, fresh checkpoint (whose
    # proofs all hold), dated now or back-dated to before the revocation: the snippets pasted
    # before the rotation, which pin the stolen key, show nothing.
    for changes in ({}, {"generated_at": "2020-01-01T00:00:00+00:00"}):
        got, warnings = open_view(browser, url, lambda c, ch=changes: forge(
            c, live, fragments, signer=stolen, **ch), refused=True)
        assert got == "STATIC GENUINE FRAGMENT"
        assert any(f"index signed by pack key {stolen.key_id}, which the log revokes from" in w
                   for w in warnings), warnings
    # The same verdict from the verifier, one line, exit 1.
    index_file = settings.public_path / "packs/all/index.json"
    envelope = json.loads(index_file.read_bytes())
    payload = json.loads(envelope["payload"])
    forged = signed_envelope([stolen], payload)
    index_file.write_bytes(forged)
    lines = []
    status = verify_main(["--pack", str(index_file), "--pack-key", stolen.public_key,
                          "--key", published_verifier_key(settings.log_path)], echo=lines.append)
    assert status == 1
    assert any(line.startswith(f"FAIL pack key revocation: the index is signed by pack key {stolen.key_id}")
               for line in lines), lines


def test_a_checkpoint_older_than_the_maximum_age_is_refused_and_the_refreshed_one_accepted(
        browser, logged, blog):
    live = logged.live
    settings = live.settings
    checkpoint_file = settings.log_path / "checkpoint"
    old_note = checkpoint_file.read_text()
    signed = checkpoint_facts(Checkpoint.parse(parse_note(old_note.encode()).text)).time
    # An embed.js that accepts checkpoints up to two hours old.
    signer = load_or_create_signer(settings.embed_signing_key_path)
    script = build_embed_js(signer, settings, log={**live.report.log, "maxAge": 7200})
    name = versioned_script_name(script)
    (settings.public_path / name).write_bytes(script)
    url = blog.page(snippet(live, name, subresource_integrity(script)))
    # The quiet log's refresh pass, a few seconds later, re-signs the same tree; the packs follow.
    while time.time() < signed + 4:
        time.sleep(0.5)
    with live.app.extensions["samizdat"].Session() as session:
        report = append_log(session, dataclasses.replace(settings, log_refresh_seconds=1.0))
    assert report.refreshed and not report.appended
    republish(live)
    new_note = checkpoint_file.read_text()
    refreshed = checkpoint_facts(Checkpoint.parse(parse_note(new_note.encode()).text)).time
    index, fragments = pack_files(live)
    assert index["checkpoint"] == new_note and refreshed >= signed + 4
    # The browser's clock two hours after the midpoint: the old checkpoint is past the maximum
    # age, the refreshed one is not.
    moment = datetime.fromtimestamp(signed + 7200 + (refreshed - signed) / 2, UTC)

    def at_moment(context, note=None):
        context.clock.set_fixed_time(moment)
        if note is not None:
            forge(context, live, fragments, note)

    got, warnings = open_view(browser, url, lambda c: at_moment(c, old_note), refused=True)
    assert got == "STATIC GENUINE FRAGMENT"
    assert any("checkpoint is older than 7200 s" in w for w in warnings), warnings
    got, warnings = open_view(browser, url, at_moment)
    assert got in live.texts and warnings == []
    # The verifier, told the same age and moment, agrees on both.
    index_file = settings.public_path / "packs/all/index.json"
    args = ["--pack", str(index_file), "--pack-key", signer.public_key,
            "--key", published_verifier_key(settings.log_path), "--max-age", "7200",
            "--now", moment.isoformat()]
    lines = []
    assert verify_main(args, echo=lines.append) == 0, lines
    assert any(line.startswith("ok  checkpoint age (the log's time line is from") for line in lines)
    payload = json.loads(json.loads(index_file.read_bytes())["payload"])
    index_file.write_bytes(signed_envelope([signer], {**payload, "checkpoint": old_note}))
    lines = []
    assert verify_main(args, echo=lines.append) == 1
    assert any(line.startswith("FAIL checkpoint age:") and "older than the maximum age of 7200 s" in line
               for line in lines), lines


def smaller_checkpoint(settings) -> str:
    """The log's tree one entry back, signed as the log signed it then (fresh time line): a
    genuine checkpoint, older than the published one."""
    note = (settings.log_path / "checkpoint").read_bytes()
    size = Checkpoint.parse(parse_note(note).text).size
    reader = TileReader(DirectoryFetcher(settings.log_path), size)
    older = Checkpoint(settings.log_origin_name, size - 1, merkle.tree_hash(reader, size - 1),
                       extension_lines(int(time.time())))
    return sign_checkpoint(older, log_signer(settings)).decode()


def test_a_smaller_checkpoint_after_a_larger_one_in_the_same_page_is_refused(browser, logged_once, blog):
    live = logged_once.live
    _, fragments = pack_files(live)
    older = smaller_checkpoint(live.settings)
    context = browser.new_context()
    page = context.new_page()
    warnings = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.goto(logged_page(logged_once, blog))
    assert shown(page)["text"] in live.texts
    # Then a second widget on the same page meets indexes carrying the smaller checkpoint (and
    # no cached pack to fall back on).
    forge(context, live, fragments, older)
    with page.expect_console_message(lambda m: "every origin failed" in m.text, timeout=60000):
        page.evaluate("""() => {
            localStorage.clear();
            document.body.insertAdjacentHTML("beforeend",
                '<blockquote class="samizdat-fragment"><p>SECOND STATIC</p></blockquote>');
            Object.values(window.__samizdatEmbeds).forEach((e) => e.scan());
        }""")
    assert page.locator(".samizdat-embed").count() == 1
    assert any("is older than the size" in w and "this page accepted: rolled back" in w
               for w in warnings), warnings
    context.close()
