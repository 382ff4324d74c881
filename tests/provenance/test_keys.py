"""Keys: rotation and revocation entries (each role's key type), their strict parsing, and the
refusal of what a revoked key signed after its revocation."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archive.wacz_signing import WaczSigner, load_wacz_signer
from embed.packs import publish_packs
from embed.signing import load_or_create_signer, verify
from provenance.appender import log_signer
from provenance.entries import EntryError, KeyEntry, KeySignatures, parse_entry
from provenance.errors import ProvenanceError
from provenance.keys import (
    KeyRefused,
    RoleSigner,
    checkpoint_refusals,
    log_entries,
    read_history,
    revocation,
    role_key,
    rotation,
    verify_key_entry,
)
from provenance.keyring import bring_key_entries
from provenance.log import LogClient, LogWriter
from provenance.note import (
    MAX_NOTE_BYTES,
    Checkpoint,
    Ed25519Signer,
    parse_note,
    sign_checkpoint,
)
from provenance.tiles import CHECKPOINT_PATH, DirectoryFetcher, TileReader
from provenance.verify import run_key_checks
from samizdat.app import create_app
from samizdat.keyfile import load_or_create_ed25519_key
from tests.conftest import make_settings
from tests.embed.conftest import add_fragments
from tests.embed.test_widget_browser import blog, browser, live  # noqa: F401 — fixtures

ORIGIN = "samizdat.test/log"
REPO = Path(__file__).resolve().parents[2]


def _signer(role: str) -> RoleSigner:
    if role == "wacz":
        return RoleSigner(role, ec.generate_private_key(ec.SECP384R1()))
    return RoleSigner(role, Ed25519PrivateKey.generate(),
                      ORIGIN if role in ("log", "witness") else None)


ROLES = ("log", "pack", "wacz", "witness")


@pytest.mark.parametrize("role", ROLES)
def test_a_rotation_verifies_with_both_keys_and_round_trips(role):
    old, new = _signer(role), _signer(role)
    entry = rotation(old, new, at="2026-12-07T20:00:00Z")
    verify_key_entry(entry)
    data = entry.encode()
    assert parse_entry(data) == entry
    assert entry.key_id == old.public.key_id and entry.new_key_id == new.public.key_id
    history = read_history([(7, data)])
    assert history.rotations == [(7, entry)] and not history.refused


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("which", ["old", "new"])
def test_a_rotation_missing_or_with_a_bad_signature_is_refused(role, which):
    old, new = _signer(role), _signer(role)
    entry = rotation(old, new, at="2026-12-07T20:00:00Z")
    # Missing: the parser refuses the shape (a rotation proves possession of both keys).
    missing = json.loads(entry.encode())
    missing["signatures"][which] = None
    with pytest.raises(EntryError, match="signed by the old key and by the new key"):
        parse_entry(json.dumps(missing, sort_keys=True, separators=(",", ":")).encode())
    # Bad: a signature by a third key of the same role in that place.
    other = _signer(role).sign(b"samizdat key entry v1\n" + entry.body())
    bad = replace(entry, signatures=replace(entry.signatures, **{which: other}))
    with pytest.raises(KeyRefused, match=f"{which} key's signature does not verify"):
        verify_key_entry(parse_entry(bad.encode()))
    history = read_history([(3, bad.encode())])
    assert not history.rotations and history.refused[0][0] == 3


def test_a_rotation_signed_by_a_key_of_another_role_is_refused():
    with pytest.raises(KeyRefused):
        rotation(_signer("pack"), _signer("log"))


@pytest.mark.parametrize("role", ROLES)
def test_a_revocation_by_the_key_itself(role):
    old = _signer(role)
    entry = revocation(role, old.public.key_id, "2026-12-07T21:00:00Z", old=old)
    verify_key_entry(parse_entry(entry.encode()))
    history = read_history([(0, b'{"type":"capture"}'), (1, entry.encode())])
    revoked = history.revocation(role, old.public.key_id)
    assert (revoked.time, revoked.index, revoked.by) == ("2026-12-07T21:00:00Z", 1, "old")


def test_a_revocation_by_the_log_key_needs_that_key():
    log = _signer("log")
    entry = revocation("pack", "0123456789abcdef", "2026-12-07T21:00:00Z", log=log)
    assert entry.key is None and entry.signatures.log and entry.signatures.old is None
    verify_key_entry(entry, [log.public])
    with pytest.raises(KeyRefused, match="not signed by a known log key"):
        verify_key_entry(entry, [_signer("log").public])
    with pytest.raises(KeyRefused, match="not signed by a known log key"):
        verify_key_entry(entry)
    assert read_history([(4, entry.encode())], [log.public]).revocation(
        "pack", "0123456789abcdef").by == "log"
    assert read_history([(4, entry.encode())]).revoked == {}


def test_a_revocation_with_a_key_file_of_another_key_is_refused():
    with pytest.raises(KeyRefused, match="holds pack key"):
        revocation("pack", "0123456789abcdef", "2026-12-07T21:00:00Z", old=_signer("pack"))


@pytest.mark.parametrize("field,value", [
    ("time", "2026-12-07T21:00:01Z"),  # backdating or postdating a revocation
    ("role", "wacz"),
    ("key_id", "fedcba9876543210"),
    ("new_key_id", None),
])
def test_a_key_entry_altered_after_the_fact_fails(field, value):
    old, new = _signer("pack"), _signer("pack")
    entry = rotation(old, new, at="2026-12-07T21:00:00Z")
    body = json.loads(entry.encode())
    body[field] = value
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises((EntryError, KeyRefused)):
        verify_key_entry(parse_entry(data))
    assert not read_history([(0, data)]).rotations


def test_a_swapped_new_key_fails_even_with_its_id():
    old, new, thief = _signer("wacz"), _signer("wacz"), _signer("wacz")
    entry = rotation(old, new, at="2026-12-07T21:00:00Z")
    swapped = replace(entry, new_key=thief.public.text, new_key_id=thief.public.key_id)
    with pytest.raises(KeyRefused, match="does not verify"):
        verify_key_entry(swapped)


@pytest.mark.parametrize("mutate,reason", [
    (lambda o: o.update(extra=1), "wrong fields"),
    (lambda o: o.update(v=2), "version"),
    (lambda o: o.update(role="tsa"), "role"),
    (lambda o: o.update(action="renew"), "action"),
    (lambda o: o.update(key_id="ABCDEF0123456789"), "hex"),
    (lambda o: o.update(key_id="01234567"), "a pack key is 16 lowercase hex"),
    (lambda o: o.update(time="yesterday"), "RFC 3339"),
    (lambda o: o["signatures"].update(log="AAAA"), "signed by the old key and by the new key"),
    (lambda o: o["signatures"].update(other="AAAA"), "wrong fields"),
    (lambda o: o.update(new_key="a b"), "printable"),
])
def test_the_parser_refuses_malformed_key_entries(mutate, reason):
    entry = rotation(_signer("pack"), _signer("pack"), at="2026-12-07T21:00:00Z")
    body = json.loads(entry.encode())
    mutate(body)
    with pytest.raises(EntryError, match=reason):
        parse_entry(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def test_a_key_entry_with_spaces_is_not_canonical():
    entry = rotation(_signer("pack"), _signer("pack"), at="2026-12-07T21:00:00Z")
    spaced = json.dumps(json.loads(entry.encode()), sort_keys=True).encode()
    with pytest.raises(EntryError, match="canonical"):
        parse_entry(spaced)


def test_a_revocation_naming_a_new_key_is_refused():
    with pytest.raises(EntryError, match="no new key"):
        KeyEntry("pack", "revoke", "0123456789abcdef", None, "fedcba9876543210", None,
                 "2026-12-07T21:00:00Z", KeySignatures(log="AAAA"))


# --- the server's keys: `flask keys`, the log's pass, the pack publisher --------------------------


@pytest.fixture
def keys_app(tmp_path, database_url):
    """The app on the parametrised database with the local store only."""
    app = create_app(make_settings(tmp_path, database_url))
    yield app
    app.extensions["samizdat"].dispose()


def _flask(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _published_history(settings, pinned_vkey: str):
    """The key history of the published log, read as any outsider reads it."""
    fetcher = DirectoryFetcher(settings.log_path)
    checkpoint = Checkpoint.parse(parse_note(fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)).text)
    reader = TileReader(fetcher, checkpoint.size)
    return checkpoint, read_history(log_entries(reader), [role_key("log", pinned_vkey)])


def _signatures(settings) -> dict[str, str]:
    envelope = json.loads((settings.public_path / "packs/all/index.json").read_bytes())
    return {s["kid"]: s["signature"] for s in envelope["signatures"]}, envelope["payload"]


def test_a_pack_key_rotation_is_logged_and_packs_are_signed_by_the_new_key_after(keys_app):
    settings = keys_app.extensions["samizdat"].settings
    add_fragments(keys_app, 3)
    _flask(keys_app, "embed", "publish")
    old = load_or_create_signer(settings.embed_signing_key_path)
    vkey = log_signer(settings).verifier.vkey

    out = _flask(keys_app, "keys", "rotate", "pack")
    new = load_or_create_signer(settings.embed_signing_key_path)
    assert new.key_id != old.key_id and f"{old.key_id} rotated to {new.key_id}" in out
    kept = settings.embed_signing_key_path.parent / "retired" / f"pack-{old.key_id}.pem"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert settings.public_path not in kept.parents
    assert load_or_create_signer(kept).key_id == old.key_id

    _flask(keys_app, "log", "append")
    checkpoint, history = _published_history(settings, vkey)
    ((index, entry),) = history.rotations
    assert (entry.role, entry.key_id, entry.new_key_id) == ("pack", old.key_id, new.key_id)
    assert index < checkpoint.size and not history.refused
    # The next pass drops it from the queue and never appends it twice.
    _flask(keys_app, "log", "append")
    again, history = _published_history(settings, vkey)
    assert again.size == checkpoint.size and len(history.rotations) == 1
    assert not (settings.log_path / ".key-queue").read_bytes()

    _flask(keys_app, "embed", "publish")
    signatures, payload = _signatures(settings)
    # The new key signs; the old one still co-signs, so embed.js copies that carry it (they check
    # only their own key's signature) keep showing fragments.
    assert set(signatures) == {new.key_id, old.key_id}
    for signer in (new, old):
        assert verify(signer.public_key, payload.encode(), signatures[signer.key_id])
    published = json.loads((settings.public_path / "published.json").read_text())
    assert published["key_id"] == new.key_id  # the key new embed.js copies carry

    # Revoked (signed by the retired key itself), the old key signs nothing more.
    out = _flask(keys_app, "keys", "revoke", "pack", old.key_id, "--at", "2026-01-01T00:00:00Z")
    assert "signed by the key itself" in out
    _flask(keys_app, "embed", "publish")
    signatures, _ = _signatures(settings)
    assert set(signatures) == {new.key_id}
    _flask(keys_app, "log", "append")
    _, history = _published_history(settings, vkey)
    assert history.revocation("pack", old.key_id).time == "2026-01-01T00:00:00Z"
    listing = _flask(keys_app, "keys", "list")
    assert f"pack  {old.key_id} retired  " in listing and "revoked from 2026-01-01" in listing
    assert f"pack  {new.key_id} current  " in listing


def test_the_current_key_cannot_be_revoked_and_bad_input_is_one_line(keys_app):
    settings = keys_app.extensions["samizdat"].settings
    _flask(keys_app, "embed", "publish")
    current = load_or_create_signer(settings.embed_signing_key_path)
    runner = keys_app.test_cli_runner()
    for args, words in [
        (["keys", "revoke", "pack", current.key_id], "rotate it first"),
        (["keys", "revoke", "pack", "0123456789abcdef", "--at", "tomorrow"], "RFC 3339"),
        (["keys", "revoke", "pack", "../../etc"], "hex"),
        (["keys", "rotate", "wacz"], "no wacz key"),
        (["keys", "rotate", "tsa"], "Invalid value"),
    ]:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and words in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (settings.log_path / ".key-queue").exists()


def test_a_log_key_rotation_hands_over_with_one_checkpoint_signed_by_both(keys_app, tmp_path):
    settings = keys_app.extensions["samizdat"].settings
    _flask(keys_app, "log", "append")
    old = log_signer(settings)
    _flask(keys_app, "keys", "rotate", "log")
    waiting = settings.log_signing_key_path.with_name("log-ed25519.pem.next")
    assert waiting.exists() and log_signer(settings).key_id == old.key_id
    listing = _flask(keys_app, "keys", "list")
    assert f"log   {old.key_id:08x}         current" in listing and " next " in listing
    result = keys_app.test_cli_runner().invoke(args=["keys", "rotate", "log"])
    assert result.exit_code == 1 and "completes after the next log pass" in result.output

    # The pass appends the rotation and signs its checkpoint with the old key, then re-signs that
    # same checkpoint with both keys and hands over.
    _flask(keys_app, "log", "append")
    new = log_signer(settings)
    assert new.key_id != old.key_id and not waiting.exists()
    note = parse_note((settings.log_path / CHECKPOINT_PATH).read_bytes())
    assert [s.key_id for s in note.signatures] == [old.key_id, new.key_id]
    assert (settings.log_path / "verifier-key").read_text().strip() == new.verifier.vkey
    for key in (old, new):
        assert LogClient(str(settings.log_path), settings.log_origin_name,
                         key.verifier).checkpoint().size == 1
    # A pass with nothing to append leaves the checkpoint both keys signed in place.
    _flask(keys_app, "log", "append")
    assert len(parse_note((settings.log_path / CHECKPOINT_PATH).read_bytes()).signatures) == 2

    # After the next entry only the new key signs; a verifier pinned to the old key follows the
    # rotation entry, which the old key signed.
    _flask(keys_app, "keys", "revoke", "wacz", "0123456789abcdef")
    _flask(keys_app, "log", "append")
    data = (settings.log_path / CHECKPOINT_PATH).read_bytes()
    assert [s.key_id for s in parse_note(data).signatures] == [new.key_id]
    with pytest.raises(ProvenanceError):
        LogClient(str(settings.log_path), settings.log_origin_name, old.verifier).checkpoint()
    lines = []
    assert run_key_checks(str(settings.log_path), old.verifier.vkey, echo=lines.append) == 0, lines
    assert any("log key rotations followed" in line for line in lines)
    # The revocation that named no key file here is signed by the (new) log key.
    _, history = _published_history(settings, old.verifier.vkey)
    assert history.revocation("wacz", "0123456789abcdef").by == "log"

    # The old log key revoked: a checkpoint it alone signs past that entry is refused.
    _flask(keys_app, "keys", "revoke", "log", f"{old.key_id:08x}")
    _flask(keys_app, "log", "append")
    checkpoint, history = _published_history(settings, old.verifier.vkey)
    assert history.revocation("log", f"{old.key_id:08x}").by == "old"
    retired = settings.log_signing_key_path.parent / "retired" / f"log-{old.key_id:08x}.pem"
    thief = Ed25519Signer(old.name, load_or_create_ed25519_key(retired, "log key"))
    assert thief.key_id == old.key_id
    forged = sign_checkpoint(checkpoint, thief)
    chain = history.log_keys(role_key("log", old.verifier.vkey))
    assert "signed only by revoked log key" in checkpoint_refusals(forged, history, chain)[0]
    assert checkpoint_refusals((settings.log_path / CHECKPOINT_PATH).read_bytes(), history,
                               chain) == []
    copy = tmp_path / "served"
    shutil.copytree(settings.log_path, copy)
    (copy / CHECKPOINT_PATH).write_bytes(forged)
    lines = []
    assert run_key_checks(str(copy), old.verifier.vkey, echo=lines.append) == 1
    assert any(line.startswith("FAIL checkpoint: ") for line in lines), lines


def _wacz(path, signer: WaczSigner, created: str) -> str:
    """A WACZ whose datapackage digest is signed by ``signer`` at ``created`` (spec 0.1.0)."""
    datapackage = json.dumps({"profile": "data-package", "resources": []}).encode()
    digest = "sha256:" + hashlib.sha256(datapackage).hexdigest()
    signed = signer.signed_data(digest, created, "Samizdat test")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("datapackage.json", datapackage)
        archive.writestr("datapackage-digest.json", json.dumps(
            {"path": "datapackage.json", "hash": digest, "signedData": signed}))
    return str(path)


def test_a_wacz_signed_by_a_revoked_key_after_its_revocation_is_refused(keys_app, tmp_path):
    settings = keys_app.extensions["samizdat"].settings
    _flask(keys_app, "log", "append")
    vkey = log_signer(settings).verifier.vkey
    old = load_wacz_signer(settings.wacz_signing_key_path)
    before = _wacz(tmp_path / "before.wacz", old, "2026-06-01T12:00:00Z")
    after = _wacz(tmp_path / "after.wacz", old, "2026-06-02T12:00:01Z")
    _flask(keys_app, "keys", "rotate", "wacz")
    _flask(keys_app, "keys", "revoke", "wacz", old.key_id, "--at", "2026-06-02T12:00:00Z")
    _flask(keys_app, "log", "append")
    new = load_wacz_signer(settings.wacz_signing_key_path)
    fresh = _wacz(tmp_path / "fresh.wacz", new, "2026-06-03T12:00:00Z")

    command = [sys.executable, "-m", "provenance.verify", "--log", str(settings.log_path),
               "--key", vkey]
    accepted = subprocess.run([*command, "--check-wacz", before, "--check-wacz", fresh], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "1 rotation(s), 1 revocation(s)" in accepted.stdout
    refused = subprocess.run([*command, "--check-wacz", after], cwd=REPO, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1, refused.stdout
    (line,) = [x for x in refused.stdout.splitlines() if x.startswith("FAIL")]
    assert f"WACZ key {old.key_id} signed it at 2026-06-02T12:00:01Z, after its revocation" in line


def test_a_pack_signed_by_a_revoked_key_after_its_revocation_is_refused(keys_app):
    settings = keys_app.extensions["samizdat"].settings
    add_fragments(keys_app, 2)
    _flask(keys_app, "embed", "publish")
    stolen = load_or_create_signer(settings.embed_signing_key_path)
    _flask(keys_app, "keys", "rotate", "pack")
    _flask(keys_app, "keys", "revoke", "pack", stolen.key_id)
    _flask(keys_app, "log", "append")
    _flask(keys_app, "embed", "publish")
    vkey = log_signer(settings).verifier.vkey
    index = settings.public_path / "packs/all/index.json"
    lines = []
    assert run_key_checks(str(settings.log_path), vkey, packs=[str(index)],
                          echo=lines.append) == 0, lines
    # The thief signs a pack now, with the revoked key (as an old embed.js would accept it).
    with keys_app.extensions["samizdat"].Session() as session:
        publish_packs(session, [stolen], settings.public_path, ttl=timedelta(days=7))
    lines = []
    assert run_key_checks(str(settings.log_path), vkey, packs=[str(index)],
                          echo=lines.append) == 1
    (line,) = [x for x in lines if x.startswith("FAIL")]
    assert f"pack key {stolen.key_id} signed it at" in line and "after its revocation" in line
    # The same through `flask verify`, which shares the verifier's options.
    result = keys_app.test_cli_runner().invoke(args=[
        "verify", "--log", str(settings.log_path), "--key", vkey, "--check-pack", str(index)])
    assert result.exit_code == 1 and f"pack key {stolen.key_id} signed it at" in result.output


def test_a_pass_that_crashed_after_recording_a_key_entry_appends_it_once(keys_app):
    rt = keys_app.extensions["samizdat"]
    settings = rt.settings
    _flask(keys_app, "log", "append")
    vkey = log_signer(settings).verifier.vkey
    _flask(keys_app, "keys", "revoke", "pack", "0123456789abcdef")
    queued = (settings.log_path / ".key-queue").read_bytes()
    # A pass that recorded the entry, appended it and died before signing a checkpoint.
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name) as writer, \
            rt.Session() as session:
        assert bring_key_entries(settings, session, writer, writer.size) == 1
        writer.append([queued.rstrip(b"\n")])
    assert (settings.log_path / ".key-queue").read_bytes() == queued  # not published: kept
    _flask(keys_app, "log", "append")
    _flask(keys_app, "log", "append")
    checkpoint, history = _published_history(settings, vkey)
    assert checkpoint.size == 1 and history.revocation("pack", "0123456789abcdef").index == 0
    assert not (settings.log_path / ".key-queue").read_bytes()
    # Queued again (the same bytes), it is not appended twice.
    (settings.log_path / ".key-queue").write_bytes(queued)
    _flask(keys_app, "log", "append")
    _flask(keys_app, "log", "append")
    assert _published_history(settings, vkey)[0].size == 1
    assert not (settings.log_path / ".key-queue").read_bytes()


def test_a_hand_edited_queue_line_is_refused_in_one_line_and_never_logged(keys_app):
    settings = keys_app.extensions["samizdat"].settings
    _flask(keys_app, "log", "append")
    queue = settings.log_path / ".key-queue"
    queue.write_bytes(b'{"type":"key","v":1,"role":"pack"}\n')
    result = keys_app.test_cli_runner().invoke(args=["log", "append"])
    assert result.exit_code == 1 and "holds an invalid entry" in result.output
    assert "Traceback" not in result.output
    assert parse_note((settings.log_path / CHECKPOINT_PATH).read_bytes()).text.split("\n")[1] == "0"


def test_a_snippet_pasted_before_flask_keys_rotate_pack_keeps_showing_fragments(
        browser, live, blog):
    from tests.embed.test_widget_browser import script_snippet, shown

    old_script = live.script
    _flask(live.app, "keys", "rotate", "pack")
    _flask(live.app, "embed", "publish")
    published = json.loads((live.settings.public_path / "published.json").read_text())
    assert published["embed_js"] != old_script  # new snippets carry the new key
    # The gateways blocked: the old publish's CID still holds packs signed before the rotation;
    # the fragments must come from the packs published since, through the retired key's signature.
    context = browser.new_context()
    context.route(f"{live.gateway}/**", lambda route: route.abort())
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{old_script}")))
    assert shown(page)["text"] in live.texts
    context.close()
