"""Signed, sharded fragment packs: what `flask embed publish` writes and the app serves."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import timedelta

import pytest

from embed.packs import MAX_REQUEST_BYTES, canonical_json, pack_slug, publish_packs
from embed.signing import load_or_create_signer, verify
from fragments.models import APPROVED, PENDING, REJECTED
from provenance.appender import append_captures
from tests.embed.conftest import add_fragments

TTL = timedelta(days=7)


@pytest.fixture
def app(local_app):
    """These tests need no S3 or IPFS: the embedded defaults."""
    return local_app


def publish(app):
    """Append the log (packs carry only what it holds), then write the packs."""
    settings = app.extensions["samizdat"].settings
    signer = load_or_create_signer(settings.embed_signing_key_path)
    append_captures(app.extensions["samizdat"])
    with app.extensions["samizdat"].Session() as session:
        return signer, publish_packs(session, [signer], settings.public_path, ttl=TTL)


def open_index(app, signer, rel):
    """Read a signed envelope, check its signature, return the payload."""
    envelope = json.loads((app.extensions["samizdat"].settings.public_path / "packs" / rel).read_bytes())
    (signature,) = envelope["signatures"]
    assert signature["kid"] == signer.key_id
    assert verify(signer.public_key, envelope["payload"].encode(), signature["signature"])
    return json.loads(envelope["payload"])


def shard_fragments(app, index):
    root = app.extensions["samizdat"].settings.public_path / "packs"
    out, shards = [], list(index.get("shards", []))
    for table in index.get("tables", []):
        data = (root / "shards" / f"{table['sha256']}.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == table["sha256"] and len(data) <= MAX_REQUEST_BYTES
        listed = json.loads(data)["shards"]
        assert len(listed) == table["shards"] and sum(e["count"] for e in listed) == table["count"]
        shards += listed
    for shard in shards:
        data = (root / "shards" / f"{shard['sha256']}.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        assert len(data) == shard["bytes"] <= MAX_REQUEST_BYTES
        fragments = json.loads(data)["fragments"]
        assert len(fragments) == shard["count"]
        out += fragments
    return out


def test_key_is_made_once_private_and_outside_the_published_tree(app):
    settings = app.extensions["samizdat"].settings
    first, _ = publish(app)
    second, _ = publish(app)
    path = settings.embed_signing_key_path
    assert first.key_id == second.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.public_path not in path.parents
    published = json.loads((settings.public_path / "packs" / "key.json").read_bytes())
    assert published == {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": first.public_key, "kid": first.key_id}]}
    assert b"PRIVATE" not in b"".join(p.read_bytes() for p in settings.public_path.rglob("*") if p.is_file())


def test_packs_hold_exactly_the_approved_fragments_per_collection_and_language(app):
    add_fragments(app, 30, collection="vietnam", language="vi")
    add_fragments(app, 5, collection="vietnam", language="en", start=100)
    add_fragments(app, 7, collection="iran", language="fa", start=200)
    add_fragments(app, 4, collection="iran", status=PENDING, start=300)
    add_fragments(app, 3, collection="iran", status=REJECTED, start=400)
    signer, report = publish(app)
    assert report.fragments == 42
    expected = {"all/index.json": 42, "vietnam/index.json": 35, "iran/index.json": 7,
                "vietnam/lang/vi/index.json": 30, "vietnam/lang/en/index.json": 5,
                "all/lang/fa/index.json": 7, "iran/lang/fa/index.json": 7}
    for rel, count in expected.items():
        index = open_index(app, signer, rel)
        fragments = shard_fragments(app, index)
        assert index["count"] == count == len(fragments) == len({f["id"] for f in fragments})
        assert index["serial"] == report.serial
    catalog = open_index(app, signer, "catalog.json")
    assert {p["path"]: p["count"] for p in catalog["packs"]}.items() >= expected.items()
    vietnam = open_index(app, signer, "vietnam/lang/vi/index.json")
    assert (vietnam["collection"], vietnam["language"]) == ("vietnam", "vi")


def test_no_file_exceeds_256_kib_however_many_fragments(app):
    add_fragments(app, 1500, text_chars=1000)
    signer, report = publish(app)
    index = open_index(app, signer, "all/index.json")
    assert len(index["shards"]) > 5
    assert report.largest_file <= MAX_REQUEST_BYTES
    assert len(shard_fragments(app, index)) == 1500
    root = app.extensions["samizdat"].settings.public_path
    assert max(p.stat().st_size for p in root.rglob("*.json")) <= MAX_REQUEST_BYTES


def test_republishing_reuses_shards_and_new_approvals_only_touch_the_last(app):
    add_fragments(app, 600, text_chars=900)
    signer, first = publish(app)
    before = open_index(app, signer, "all/index.json")["shards"]
    _, again = publish(app)
    assert again.shards_written == 0 and again.serial > first.serial
    add_fragments(app, 3, start=10_000)
    _, third = publish(app)
    after = open_index(app, signer, "all/index.json")["shards"]
    assert [s["sha256"] for s in after[:-1]] == [s["sha256"] for s in before[:-1]]
    assert sum(s["count"] for s in after) == 603


def test_empty_archive_publishes_a_valid_empty_pack(app):
    signer, report = publish(app)
    index = open_index(app, signer, "all/index.json")
    assert (index["count"], index["shards"], report.fragments) == (0, [], 0)


def test_a_tampered_payload_or_signature_does_not_verify(app):
    add_fragments(app, 3)
    signer, _ = publish(app)
    root = app.extensions["samizdat"].settings.public_path / "packs"
    envelope = json.loads((root / "all" / "index.json").read_bytes())
    payload, signature = envelope["payload"].encode(), envelope["signatures"][0]["signature"]
    assert verify(signer.public_key, payload, signature)
    assert not verify(signer.public_key, payload.replace(b'"count":3', b'"count":4'), signature)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert not verify(signer.public_key, payload, flipped)
    other = load_or_create_signer(root.parent.parent / "other-key.pem")
    assert not verify(other.public_key, payload, signature)


def test_fragment_markup_stays_data_and_links_are_relative_passages(app):
    add_fragments(app, 1, text='<script>alert(1)</script> "quoted" </script>', text_chars=120)
    signer, _ = publish(app)
    (fragment,) = shard_fragments(app, open_index(app, signer, "all/index.json"))
    assert fragment["text"].startswith("<script>alert(1)</script>")
    assert fragment["link"].startswith(f"captures/{fragment['capture_id']}/#:~:text=")


def test_collection_names_become_safe_path_segments():
    assert pack_slug(None) == "all"
    assert pack_slug("vietnam") == "vietnam"
    for name in ("Việt Nam / blogs", "../etc", "all", "shards", "A" * 100):
        slug = pack_slug(name)
        assert slug not in ("all", "shards") and "/" not in slug and ".." not in slug
        assert len(slug) <= 63 and slug == slug.lower()
    assert pack_slug("Việt Nam / blogs") != pack_slug("Viet Nam blogs")


def test_canonical_json_is_byte_stable():
    assert canonical_json({"b": 1, "a": "Hà Nội"}) == '{"a":"Hà Nội","b":1}'.encode()


def test_app_serves_packs_cacheably_without_cookies(app):
    add_fragments(app, 2)
    signer, _ = publish(app)
    client = app.test_client()
    index = client.get("/embed/packs/all/index.json")
    assert index.status_code == 200 and index.mimetype == "application/json"
    assert index.headers["Access-Control-Allow-Origin"] == "*"
    assert index.headers["Cache-Control"] == "public, max-age=60"
    assert "Set-Cookie" not in index.headers
    shard = json.loads(json.loads(index.data)["payload"])["shards"][0]["sha256"]
    cached = client.get(f"/embed/packs/shards/{shard}.json")
    assert cached.status_code == 200
    assert cached.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for bad in ("../keys/embed-ed25519.pem", "..%2F..%2Fkeys%2Fembed-ed25519.pem",
                "all/index.json.bak", "nope/index.json"):
        assert client.get(f"/embed/packs/{bad}").status_code == 404


def test_publish_command_reports_what_it_wrote(app):
    add_fragments(app, 12)
    result = app.test_cli_runner().invoke(args=["embed", "publish"])
    assert result.exit_code == 0, result.output
    assert "12 approved fragment(s)" in result.output and "largest file" in result.output


def test_during_a_rotation_packs_carry_the_new_and_the_retired_signature(app, tmp_path):
    from embed.publish import publish_embed

    add_fragments(app, 3)
    rt = app.extensions["samizdat"]
    settings = rt.settings
    old = load_or_create_signer(settings.embed_signing_key_path)
    retired = tmp_path / "retired.pem"
    settings.embed_signing_key_path.rename(retired)  # step 1 of docs/embed.md: keep the old key
    rotated = settings.replace(embed_previous_keys=str(retired))
    with rt.Session() as session:
        report = publish_embed(session, rotated)
    new = load_or_create_signer(settings.embed_signing_key_path)
    assert new.key_id != old.key_id and report.key_id == new.key_id
    envelope = json.loads((settings.public_path / "packs/all/index.json").read_bytes())
    by_kid = {s["kid"]: s["signature"] for s in envelope["signatures"]}
    assert set(by_kid) == {new.key_id, old.key_id}
    for signer in (new, old):
        assert verify(signer.public_key, envelope["payload"].encode(), by_kid[signer.key_id])
    keys = json.loads((settings.public_path / "packs/key.json").read_bytes())["keys"]
    assert [k["kid"] for k in keys] == [new.key_id, old.key_id]


def test_a_missing_retired_key_is_a_clear_error_not_a_new_key(app, tmp_path):
    from embed.publish import publish_embed
    from samizdat.errors import SamizdatError

    rt = app.extensions["samizdat"]
    with rt.Session() as session, pytest.raises(SamizdatError, match="does not exist"):
        publish_embed(session, rt.settings.replace(embed_previous_keys=str(tmp_path / "gone.pem")))
    assert not (tmp_path / "gone.pem").exists()


def test_the_scheduler_republishes_packs_shortly_after_curation_changes(settings, runtime, site):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from fragments.curation import Reviewer, review_pending
    from mirror.pipeline import capture_source
    from mirror.sources import add_source
    from tests.services import settings_env
    from tests.sites import seed_names

    with runtime.Session() as session:
        source_id = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source.id
        session.commit()
    capture_source(runtime, source_id)
    env = settings_env(settings, SAMIZDAT_EMBED_PUBLISH_QUIET_SECONDS="1")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "flask", "scheduler"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    index = settings.public_path / "packs" / "all" / "index.json"

    def count() -> int | None:
        try:
            return json.loads(json.loads(index.read_bytes())["payload"])["count"]
        except (OSError, ValueError):
            return None

    def wait_for(expected, what):
        deadline = time.monotonic() + 60
        while count() != expected:
            assert time.monotonic() < deadline and proc.poll() is None, f"no publish: {what}"
            time.sleep(0.3)

    try:
        wait_for(0, "the first publish of an archive with nothing approved")
        with runtime.Session() as session:
            approved = review_pending(session, APPROVED, Reviewer("arch")).changed
            session.commit()
        wait_for(approved, "the publish after approving")
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert approved > 0


def test_a_pack_of_many_shards_lists_tables_so_its_index_stays_small(app):
    add_fragments(app, 120, text_chars=200)
    settings = app.extensions["samizdat"].settings
    signer = load_or_create_signer(settings.embed_signing_key_path)
    append_captures(app.extensions["samizdat"])
    with app.extensions["samizdat"].Session() as session:
        publish_packs(session, [signer], settings.public_path, ttl=TTL, shard_bytes=2000, index_shards=4)
    index = open_index(app, signer, "all/index.json")
    assert "shards" not in index and len(index["tables"]) > 2
    assert all(t["shards"] <= 4 for t in index["tables"])
    fragments = shard_fragments(app, index)
    assert len(fragments) == len({f["id"] for f in fragments}) == index["count"] == 120


def test_indexes_and_the_catalogue_carry_a_signed_expiry_the_setting_ahead(app):
    from datetime import datetime

    from embed.publish import PUBLISHED_STATE, publish_embed

    add_fragments(app, 3)
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        publish_embed(session, rt.settings.replace(embed_index_ttl_hours=10))
    signer = load_or_create_signer(rt.settings.embed_signing_key_path)
    state = json.loads((rt.settings.public_path / PUBLISHED_STATE).read_bytes())
    for rel in ("all/index.json", "vietnam/lang/vi/index.json", "catalog.json"):
        payload = open_index(app, signer, rel)  # the signature covers ``expires``
        made, expires = (datetime.fromisoformat(payload[k]) for k in ("generated_at", "expires"))
        assert expires - made == timedelta(hours=10) and expires.utcoffset() == timedelta(0)
        assert (payload["generated_at"], payload["expires"]) == (state["generated_at"], state["expires"])


def test_the_scheduler_republishes_unchanged_packs_at_half_their_lifetime(local_settings):
    import time

    from embed.tasks import periodic_tasks
    from samizdat.app import create_app
    from samizdat.tasks import TASKS_KEY

    # A lifetime of 4 s: half of it passes within the test; a week behaves the same, slower.
    settings = local_settings.replace(embed_index_ttl_hours=4 / 3600)
    application = create_app(settings)
    rt = application.extensions["samizdat"]
    try:
        add_fragments(application, 3)
        registered = {t.id for t in application.extensions[TASKS_KEY]}
        (task,) = periodic_tasks(settings)
        assert task.id in registered

        def serial() -> int:
            return json.loads((settings.public_path / "published.json").read_bytes())["serial"]

        assert task.func(rt) is True  # never published: publishes at once
        first = serial()
        assert task.func(rt) is False  # nothing changed and the indexes are fresh
        time.sleep(2.2)
        assert task.func(rt) is True  # nothing changed, but half the lifetime has passed
        assert serial() > first
        signer = load_or_create_signer(settings.embed_signing_key_path)
        payload = open_index(application, signer, "all/index.json")
        assert payload["serial"] == serial() and payload["count"] == 3
        assert task.func(rt) is False
    finally:
        rt.dispose()
