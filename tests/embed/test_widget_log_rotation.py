"""The widget and the verifier follow a log-key rotation: a snippet pinned to an earlier log key
keeps showing logged fragments, in Chromium against the real app, log, S3 and IPFS, and a forged
rotation is refused with its reason."""

from __future__ import annotations

import json
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from embed.packs import signed_envelope
from embed.signing import load_or_create_signer
from provenance.entries import KeySignatures, key_signing_message, parse_entry
from provenance.keyring import load_role_signer
from provenance.keys import RoleSigner, rotation
from provenance.note import Ed25519Signer, parse_note, sign_note
from provenance.verify import main as verify_main
from tests.embed.test_widget_browser import blog, browser, live  # noqa: F401 (fixtures)
from tests.embed.test_widget_log_browser import (
    forge,
    logged,  # noqa: F401 (fixture)
    logged_page,
    open_view,
    pack_files,
    republish,
)


def _flask(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def rotate_log_key(live, revoked_wacz: str) -> RoleSigner:
    """`flask keys rotate log`, the pass that hands over, then one more entry (a revocation) so
    that the new key alone signs the checkpoint, and a publish. Returns the key rotated out."""
    old = load_role_signer(live.settings, "log")
    _flask(live.app, "keys", "rotate", "log")
    _flask(live.app, "log", "append")
    _flask(live.app, "keys", "revoke", "wacz", revoked_wacz)
    republish(live)
    return old


def signer_ids(live) -> list[int]:
    return [s.key_id for s in parse_note((live.settings.log_path / "checkpoint").read_bytes()).signatures]


def verify_index(live, vkey: str) -> tuple[int, str]:
    """`python -m provenance.verify --pack` of the "all" index with the log key ``vkey``."""
    lines: list[str] = []
    pack_key = load_or_create_signer(live.settings.embed_signing_key_path).public_key
    status = verify_main(["--pack", str(live.settings.public_path / "packs/all/index.json"),
                          "--pack-key", pack_key, "--key", vkey], echo=lines.append)
    return status, "\n".join(lines)


def test_a_snippet_made_before_two_log_key_rotations_keeps_showing_logged_fragments(
        browser, logged, blog):
    live = logged.live
    url = logged_page(logged, blog)
    first = load_role_signer(live.settings, "log")
    first_vkey = json.loads((live.settings.public_path / "published.json").read_text())["log"]["key"]

    rotate_log_key(live, "0123456789abcdef")
    index, _ = pack_files(live)
    assert len(index["log_rotations"]) == 1
    assert f'"key_id":"{first.public.key_id}"' in index["log_rotations"][0]["entry"]
    assert int(first.public.key_id, 16) not in signer_ids(live)  # the new key alone signs
    got, warnings = open_view(browser, url)
    assert got in live.texts, warnings
    status, out = verify_index(live, first_vkey)
    assert status == 0 and "log key rotations followed" in out, out

    second = load_role_signer(live.settings, "log")
    rotate_log_key(live, "fedcba9876543210")
    index, _ = pack_files(live)
    assert len(index["log_rotations"]) == 2
    assert int(second.public.key_id, 16) not in signer_ids(live)
    got, warnings = open_view(browser, url)
    assert got in live.texts, warnings
    status, out = verify_index(live, first_vkey)
    assert status == 0 and out.count(" to ") >= 2, out
    # A snippet made after the rotations pins the current key and needs no rotation.
    status, out = verify_index(live, published_key(live))
    assert status == 0 and "log key rotations followed" not in out, out


def published_key(live) -> str:
    return json.loads((live.settings.public_path / "published.json").read_text())["log"]["key"]


def test_a_forged_log_key_rotation_is_refused_by_the_widget_and_the_verifier(browser, logged, blog):
    live = logged.live
    url = logged_page(logged, blog)
    pinned = published_key(live)
    old = rotate_log_key(live, "0123456789abcdef")
    index, fragments = pack_files(live)
    real = index["log_rotations"][0]
    note = (live.settings.log_path / "checkpoint").read_bytes()
    text = parse_note(note).text
    thief_key = RoleSigner("log", Ed25519PrivateKey.generate(), old.name)
    thief = Ed25519Signer(old.name, thief_key.private_key)
    thief_note = sign_note(text, [thief]).decode()
    # The old key stolen: a rotation to the thief's key, signed by both, but not in the log.
    forged = rotation(old, thief_key)
    # Signed by the old key only (its signature where the new key's should be).
    message = key_signing_message(forged)
    old_only = replace(forged, signatures=KeySignatures(old=old.sign(message), new=old.sign(message)))
    # Naming the real new key, the new-key signature made by another key.
    genuine = parse_entry(real["entry"].encode())
    other = replace(genuine, signatures=KeySignatures(old=genuine.signatures.old,
                                                      new=thief_key.sign(key_signing_message(genuine))))
    cases = [
        (forged, thief_note, "inclusion proof does not lead to the checkpoint",
         "not included in the checkpoint"),
        (old_only, thief_note, f"not signed by the new key {thief_key.public.key_id}",
         "the new key's signature does not verify"),
        (other, note.decode(), f"not signed by the new key {genuine.new_key_id}",
         "the new key's signature does not verify"),
    ]
    for entry, checkpoint, reason, refused in cases:
        carried = [{**real, "entry": entry.encode().decode()}]
        got, warnings = open_view(
            browser, url, lambda c, n=checkpoint, r=carried: forge(c, live, fragments, n, log_rotations=r),
            refused=True)
        assert got == "STATIC GENUINE FRAGMENT"
        assert any(reason in w for w in warnings), (reason, warnings)
        # The verifier, given the same index, refuses it for the same reason.
        payload = {**index, "checkpoint": checkpoint, "log_rotations": carried}
        path = live.settings.public_path / "packs/all/index.json"
        keep = path.read_bytes()
        path.write_bytes(signed_envelope([load_or_create_signer(live.settings.embed_signing_key_path)], payload))
        try:
            status, out = verify_index(live, pinned)
        finally:
            path.write_bytes(keep)
        assert status == 1 and f"log key rotation at entry {real['index']}" in out, out
        assert refused in out, (refused, out)
    # A second rotation of the key already rotated (to the thief) is refused too.
    carried = [real, {**real, "index": real["index"] + 1, "entry": forged.encode().decode()}]
    got, warnings = open_view(browser, url, lambda c: forge(c, live, fragments, None, log_rotations=carried),
                              refused=True)
    assert any("which already rotated to another" in w for w in warnings), warnings
