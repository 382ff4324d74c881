"""`python -m provenance.verify --pack`: a widget pack checked against the log without our server,
on the packs and log the real app published (S3 and IPFS on, as in the widget's browser tests)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from embed.packs import canonical_json, signed_envelope
from embed.signing import load_or_create_signer
from provenance.appender import published_verifier_key
from provenance.merkle import EMPTY_ROOT
from provenance.note import Checkpoint, Ed25519Signer, parse_note, sign_checkpoint, sign_note
from tests.embed.test_widget_log_browser import logged_once, smaller_checkpoint  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


def verify(*args: str) -> tuple[int, list[str]]:
    """The standalone verifier as a reader runs it: its own process, from the source tree."""
    done = subprocess.run([sys.executable, "-m", "provenance.verify", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def copy_packs(live, tmp: Path) -> Path:
    """A supporter's copy of the published packs/ directory, to tamper with."""
    target = tmp / "copy" / "packs"
    shutil.copytree(live.settings.public_path / "packs", target)
    return target


def rewrite(live, packs: Path, change) -> None:
    """Let ``change(index, fragments)`` alter the "all" pack, then re-sign it with the real pack
    key (a stolen one): what a thief could publish without touching the log."""
    envelope = packs / "all/index.json"
    index = json.loads(json.loads(envelope.read_bytes())["payload"])
    shard = json.loads((packs / f"shards/{index['shards'][0]['sha256']}.json").read_bytes())
    fragments = shard["fragments"]
    change(index, fragments)
    data = canonical_json({"format": "samizdat-pack/1", "fragments": fragments})
    digest = hashlib.sha256(data).hexdigest()
    (packs / f"shards/{digest}.json").write_bytes(data)
    index.update(count=len(fragments), shards=[{"sha256": digest, "count": len(fragments), "bytes": len(data)}])
    envelope.write_bytes(signed_envelope([load_or_create_signer(live.settings.embed_signing_key_path)], index))


def test_verify_pack_proves_every_fragment_and_names_each_forgery(logged_once, tmp_path):
    logged = logged_once
    live = logged.live
    key = published_verifier_key(live.settings.log_path)
    pack_key = load_or_create_signer(live.settings.embed_signing_key_path).public_key
    log_url = f"{live.url}/log"
    index_url = f"{live.url}/embed/packs/all/index.json"

    status, lines = verify("--pack", index_url, "--pack-key", pack_key, "--log", log_url, "--key", key)
    assert status == 0, lines
    assert lines[0].startswith("ok  the log's checkpoint")
    assert any(line.startswith("ok  pack signature of all") for line in lines)
    assert any(line.startswith("ok  pack checkpoint consistent") for line in lines)
    assert sum(line.startswith("ok  fragment ") for line in lines) == len(logged.logged)

    # A bare shard: checked against the log itself.
    index = json.loads(json.loads((live.settings.public_path / "packs/all/index.json").read_bytes())["payload"])
    shard = live.settings.public_path / f"packs/shards/{index['shards'][0]['sha256']}.json"
    status, lines = verify("--pack", str(shard), "--log", log_url, "--key", key)
    assert status == 0 and sum(line.startswith("ok  fragment ") for line in lines) == len(logged.logged)

    # Another pack key: the signature is refused before anything else is believed.
    other = load_or_create_signer(tmp_path / "other.pem").public_key
    status, lines = verify("--pack", index_url, "--pack-key", other, "--key", key)
    assert status == 1 and lines[-1].startswith("FAIL pack signature: no signature by the pack key")

    def forged(index, fragments):
        fragments.append({**fragments[0], "id": "f" * 32, "text": "Forged words"})

    def bad_proof(index, fragments):
        fragments[0]["log"]["proof"][0] = "A" * 43 + "="

    impostor = Ed25519Signer(parse_note(logged_checkpoint(live)).text.split("\n")[0],
                             Ed25519PrivateKey.generate())

    def other_checkpoint(index, fragments):
        index["checkpoint"] = sign_note(parse_note(logged_checkpoint(live)).text, [impostor]).decode()

    cases = ((forged, "FAIL fragment ffffffffffffffffffffffffffffffff", "its log entry approves another fragment"),
             (bad_proof, "FAIL fragment ", "does not lead to the root"),
             (other_checkpoint, "FAIL pack checkpoint", "no signature by a trusted key"))
    for number, (change, start, reason) in enumerate(cases):
        packs = copy_packs(live, tmp_path / str(number))
        rewrite(live, packs, change)
        status, lines = verify("--pack", str(packs / "all/index.json"), "--pack-key", pack_key,
                               "--log", str(live.settings.log_path), "--key", key)
        assert status == 1
        assert any(line.startswith(start) and reason in line for line in lines), lines


def logged_checkpoint(live) -> bytes:
    return (live.settings.log_path / "checkpoint").read_bytes()


def test_verify_pack_refuses_garbage_and_hostile_listings_in_one_line_each(tmp_path):
    signer = load_or_create_signer(tmp_path / "pack.pem")
    log_signer = Ed25519Signer("example.org/log", Ed25519PrivateKey.generate())
    log_key = log_signer.verifier.vkey
    index = tmp_path / "packs" / "all" / "index.json"
    index.parent.mkdir(parents=True)
    unproven = signed_envelope([signer], {"format": "samizdat-pack/1", "pack": "all", "tables": [7]})
    checkpoint = sign_checkpoint(Checkpoint("example.org/log", 0, EMPTY_ROOT), log_signer).decode()
    hostile = signed_envelope([signer], {"format": "samizdat-pack/1", "pack": "all", "tables": [7, None],
                                         "checkpoint": checkpoint})
    cases = ((b"\xff\xfe", "FAIL pack: the pack file is not JSON"),
             (b"[" * 100_000, "FAIL pack: the pack file is not JSON"),
             (b"x" * (256 * 1024 + 1), "FAIL pack: " + str(index) + " is larger than 262144 bytes"),
             (b'{"payload": 3}', "FAIL pack signature: the index is not a signed envelope"),
             (unproven, "FAIL pack checkpoint: the index names no log checkpoint"),
             (hostile, "FAIL pack shards: a listed sha256 is not 64 hex digits"))
    for data, expected in cases:
        index.write_bytes(data)
        status, lines = verify("--pack", str(index), "--pack-key", signer.public_key, "--key", log_key)
        assert status == 1 and lines[-1].startswith(expected), lines


def test_verify_pack_refuses_a_checkpoint_past_the_maximum_age_and_a_rollback(logged_once, tmp_path):
    live = logged_once.live
    key = published_verifier_key(live.settings.log_path)
    pack_key = load_or_create_signer(live.settings.embed_signing_key_path).public_key
    packs = copy_packs(live, tmp_path)
    index = str(packs / "all/index.json")
    base = ("--pack", index, "--pack-key", pack_key, "--key", key)
    # Fresh now; three days on, past a maximum age of two days (the widget's rule, its clock given).
    status, lines = verify(*base, "--max-age", str(2 * 86400))
    assert status == 0 and any(line.startswith("ok  checkpoint age (the log's time line is from")
                               for line in lines), lines
    status, lines = verify(*base, "--max-age", str(2 * 86400), "--now", str(int(time.time()) + 3 * 86400))
    assert status == 1
    assert [line for line in lines if line.startswith("FAIL")] == [
        next(line for line in lines if line.startswith("FAIL checkpoint age: the log's time line is from"))]
    assert "older than the maximum age of 172800 s" in lines[-1]
    status, lines = verify(*base, "--now", "yesterday")
    assert status == 2  # a usage error, as argparse reports it
    # With --state, the largest pack checkpoint accepted is remembered: a smaller one after it
    # (a genuine older checkpoint, re-signed into an index with the stolen key) is a rollback.
    state = tmp_path / "state"
    status, lines = verify(*base, "--state", str(state))
    assert status == 0 and "ok  pack checkpoint rollback (the first pack checkpoint seen)" in lines
    older = smaller_checkpoint(live.settings)
    rewrite(live, packs, lambda index, fragments: index.update(checkpoint=older))
    status, lines = verify(*base, "--state", str(state))
    assert status == 1
    assert any(line.startswith("FAIL pack checkpoint rollback: size ") and "rolled back" in line
               for line in lines), lines
    # Without the memory the same older checkpoint is, by itself, a genuine one.
    status, lines = verify(*base, "--no-state")
    assert not any("rollback" in line for line in lines)
