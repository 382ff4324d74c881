"""A hostile S3 bucket (or a planted database row) cannot write outside a root, forge curation,
or exhaust memory during `flask mirror rebuild-index` (issue 14, items 5, 6 and 7).

Real services only: moto's S3 server, the js-ipfs daemon, the loopback fixture site, SQLite files.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from accounts.models import AuditEntry
from archive.static_copy import ExportedFile, StaticExportReport, write_local
from fragments.curation import Reviewer, review
from fragments.models import Fragment
from fragments.split import fragment_id
from mirror.models import Capture, CapturePart
from mirror.rebuild import MAX_STATE_BYTES, STATE_PREFIX, plan_rebuild
from mirror.replicas import MANIFEST_MARKER_PREFIX
from mirror.storage import IpfsStore, S3Store, sha256_hex
from mirror.storage.sites import S3Site, SiteFile, SiteReport
from samizdat import migrate
from samizdat.errors import UnsafePathError
from tests.mirror.test_rebuild import Server, drop, s3_settings
from tests.sites import seed_names

HOSTILE = "../" * 12 + "tmp/x"


@pytest.fixture
def s3(s3_server, bucket) -> S3Store:
    """The test's bucket, read directly."""
    return S3Store(bucket, s3_server.endpoint_url)


def captured(tmp_path, sqlite_url, s3_server, bucket, site, **extra) -> Server:
    """A server with S3 on that has captured one seed article."""
    server = Server(s3_settings(tmp_path, sqlite_url, s3_server, bucket, **extra))
    assert server.flask("sources", "add", site.url(f"/articles/{seed_names()[0]}.html")).exit_code == 0
    assert server.flask("mirror", "run", "1").exit_code == 0
    return server


def lose(server: Server, tmp_path, sqlite_url, s3_server, bucket) -> Server:
    """The server is lost (database and data directory); a new one starts on an empty database."""
    server.close()
    drop(sqlite_url)
    migrate.upgrade(sqlite_url)
    shutil.rmtree(tmp_path / "one")
    return Server(s3_settings(tmp_path / "two", sqlite_url, s3_server, bucket))


def escape_name(target) -> str:
    """A part name that, joined under any directory of this machine, lands on ``target``."""
    return "../" * 40 + str(target).lstrip("/")


# --- Item 5: names the pipeline never makes, and writers that stay under their root -------------


def test_a_manifest_naming_a_path_outside_is_refused_at_rebuild(tmp_path, sqlite_url, s3_server, bucket,
                                                                  site, s3):
    before = captured(tmp_path / "one", sqlite_url, s3_server, bucket, site)
    with before.runtime.Session() as session:
        manifest_sha = session.scalar(select(CapturePart.sha256).where(CapturePart.role == "manifest"))
    # The bucket forges a second capture of the page whose offline copy is named outside.
    body = json.loads(s3.get(S3Store.key_for(manifest_sha)))
    body["fetched_at"] = (datetime.fromisoformat(body["fetched_at"]) + timedelta(hours=1)).isoformat()
    next(p for p in body["parts"] if p["role"] == "offline")["name"] = HOSTILE
    forged = s3.put(json.dumps(body).encode()).sha256
    s3.put_named(MANIFEST_MARKER_PREFIX + forged, b"")

    after = lose(before, tmp_path, sqlite_url, s3_server, bucket)
    result = after.flask("mirror", "rebuild-index")
    assert result.exit_code == 0, result.output
    assert "restored 1 sources, 1 captures" in result.output and "1 problems skipped" in result.output
    refused = [line for line in result.output.splitlines() if line.startswith(f"skipped: manifest {forged[:12]}")]
    assert len(refused) == 1 and "is not one Samizdat makes" in refused[0], result.output
    with after.runtime.Session() as session:
        names = set(session.scalars(select(CapturePart.name)))
        assert not any(".." in name for name in names) and session.scalar(select(Capture.id).where(
            Capture.fetched_at == datetime.fromisoformat(body["fetched_at"]))) is None
    after.close()


def test_a_planted_part_name_is_refused_by_every_writer(tmp_path, sqlite_url, s3_server, bucket, site, s3,
                                                          ipfs_node):
    server = captured(tmp_path / "one", sqlite_url, s3_server, bucket, site)
    # Logged first, as the scheduler does within 30 s: the static copy exports only captures the
    # log holds, so an unlogged capture's planted part would never reach a writer at all.
    assert server.flask("log", "append").exit_code == 0
    outside = tmp_path / "escaped"
    with server.runtime.Session() as session:
        page = session.scalar(select(CapturePart).where(CapturePart.role == "page"))
        session.add(CapturePart(capture_id=page.capture_id, role="asset", name=escape_name(outside),
                                sha256=page.sha256, size=page.size, content_type="text/html"))
        session.commit()

    # The static export (the scheduler runs it by itself) refuses, and changes nothing.
    published = server.flask("archive", "publish")
    assert published.exit_code == 1 and "Traceback" not in published.output
    assert "leaves its directory" in published.output and "not changed" in published.output
    assert not outside.exists()
    assert not [key for key, _ in s3.list_keys("") if "escaped" in key]

    # Each writer refuses on its own, whatever its caller passes.
    settings = server.runtime.settings
    hostile = ExportedFile(escape_name(outside), "0" * 64, 1, "text/plain", data=b"x")
    with pytest.raises(UnsafePathError):
        write_local([hostile], settings, server.runtime.stores["local"], {}, StaticExportReport())
    with pytest.raises(UnsafePathError):
        S3Site(bucket, "site", s3_server.endpoint_url).put(
            [SiteFile(f"a/{HOSTILE}", b"x", "text/plain", "no-cache")], SiteReport("s3"))
    with pytest.raises(UnsafePathError):
        s3.put_named(f"index/{HOSTILE}", b"x")
    assert not outside.exists()
    assert not [key for key, _ in s3.list_keys("") if key.endswith("tmp/x")]
    ipfs = IpfsStore(ipfs_node.api_multiaddr)
    cid = ipfs.put(b"a part").locator
    with pytest.raises(UnsafePathError):
        ipfs.make_directory({"index.html": cid, HOSTILE: cid})

    # The self-host zip reads the published packs: a pack naming a file outside is refused, no 500.
    approved = server.flask("fragments", "approve", "--all")
    assert approved.exit_code == 0, approved.output
    assert server.flask("embed", "publish").exit_code == 0
    packs = settings.public_path / "packs"
    index_file = next(packs.glob("*/index.json"))
    signed = json.loads(index_file.read_bytes())
    payload = json.loads(signed["payload"])
    payload["tables"] = [{"sha256": "../../keys/embed-ed25519"}]
    signed["payload"] = json.dumps(payload)
    index_file.write_text(json.dumps(signed))
    # What the hostile name points at exists: only the confinement stops it being read.
    (settings.public_path / "keys").mkdir()
    (settings.public_path / "keys" / "embed-ed25519.json").write_text('{"shards": []}')
    answer = server.client.get("/embed/selfhost.zip")
    assert answer.status_code == 503, answer.status_code
    server.close()


# --- Item 6: recorded decisions hold only for text the verified capture holds --------------------


def test_a_forged_approved_fragment_comes_back_pending_and_never_reaches_the_packs(
        tmp_path, sqlite_url, s3_server, bucket, site, s3):
    before = captured(tmp_path / "one", sqlite_url, s3_server, bucket, site)
    with before.runtime.Session() as session:
        honest = session.scalar(select(Fragment).order_by(Fragment.position))
        review(session, [honest.id], "approved", Reviewer("alice"))
        session.commit()
        honest_id = honest.id
        capture = session.scalar(select(Capture))
        url, sha, fetched_at = capture.url, capture.sha256, capture.fetched_at.isoformat()
    assert before.flask("mirror", "save-index").exit_code == 0
    (key,) = [k for k, _ in s3.list_keys(STATE_PREFIX)]
    state = json.loads(gzip.decompress(s3.get(key)))

    forged_text = "FORGED: the outlet retracts every word it published about the trial."
    edited_original = "FORGED original that was never on the page, edited into something milder."
    common = {"source_url": url, "sha256": sha, "fetched_at": fetched_at, "language": "en",
              "title": "Forged Outlet", "site_name": "Forged Outlet", "country": "VN", "collection": None,
              "category_code": None, "created_at": fetched_at, "tags": ["trusted"]}
    forged = {**common, "id": fragment_id(url, forged_text), "position": 900, "text": forged_text,
              "original_text": None, "status": "approved", "edited_by": None, "edited_at": None,
              "reviewed_by": "alice", "reviewed_at": fetched_at}
    forged_edit = {**common, "id": fragment_id(url, edited_original), "position": 901,
                   "text": "A milder wording.", "original_text": edited_original, "status": "approved",
                   "edited_by": "alice", "edited_at": fetched_at, "reviewed_by": "bob",
                   "reviewed_at": fetched_at}
    state["fragments"] += [forged, forged_edit]
    data = gzip.compress(json.dumps(state, sort_keys=True).encode(), mtime=0)
    s3.put_named(f"{STATE_PREFIX}29991231T000000000000Z-{sha256_hex(data)}.json.gz", data)

    after = lose(before, tmp_path, sqlite_url, s3_server, bucket)
    result = after.flask("mirror", "rebuild-index")
    assert result.exit_code == 0, result.output
    assert "1 approved" in result.output and "2 recorded decisions not verified, pending again" in result.output
    listed = [line for line in result.output.splitlines() if line.startswith("pending again: ")]
    assert {forged["id"], forged_edit["id"]} == {line.split()[3].rstrip(":") for line in listed}
    assert all("the capture does not hold its text" in line for line in listed)
    with after.runtime.Session() as session:
        assert session.get(Fragment, honest_id).status == "approved"
        assert session.get(Fragment, honest_id).reviewed_by == "alice"
        for record in (forged, forged_edit):
            fragment = session.get(Fragment, record["id"])
            assert (fragment.status, fragment.reviewed_by, fragment.edited_by) == ("pending", None, None)
            assert fragment.site_name != "Forged Outlet" and fragment.title != "Forged Outlet"
        actions = [(e.action, e.target_id) for e in session.scalars(select(AuditEntry))]
    assert ("archive.rebuild", None) in actions
    assert {("fragment.rebuild-unverified", forged["id"]), ("fragment.rebuild-unverified", forged_edit["id"])} \
        <= set(actions)

    assert after.flask("embed", "publish").exit_code == 0
    published = b"".join(p.read_bytes() for p in (after.runtime.settings.public_path / "packs").rglob("*.json"))
    assert b"FORGED" not in published and b"milder wording" not in published
    after.close()


# --- Item 7: an index state object inflates within a bound ----------------------------------------


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes gzipped, made a mebibyte at a time (never held whole)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(2**20)
    out = [deflater.compress(zeros) for _ in range(size // 2**20)]
    return b"".join(out) + deflater.flush()


def test_an_index_state_bomb_is_refused_in_a_few_megabytes(tmp_path, sqlite_url, s3_server, bucket, site, s3):
    before = captured(tmp_path / "one", sqlite_url, s3_server, bucket, site)
    bomb = gzip_bomb(MAX_STATE_BYTES + 2**24)
    assert len(bomb) < 2**20  # a small object that would inflate past the bound
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    key = f"{STATE_PREFIX}{stamp}-{sha256_hex(bomb)}.json.gz"
    s3.put_named(key, bomb)
    after = lose(before, tmp_path, sqlite_url, s3_server, bucket)

    plan_rebuild(after.runtime)  # once untraced: the S3 client's own first-use allocations
    tracemalloc.start()
    try:
        plan = plan_rebuild(after.runtime)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plan.state is None
    assert any(key in p and "inflates to more than 256 MiB" in p for p in plan.problems), plan.problems
    assert peak < 8 * 2**20, f"peak Python memory {peak / 2**20:.1f} MiB"

    dry = after.flask("mirror", "rebuild-index", "--dry-run")
    assert dry.exit_code == 0 and "would restore 1 sources, 1 captures" in dry.output, dry.output
    assert f"skipped: index state {key}" in dry.output and "refused unread" in dry.output
    after.close()


def test_part_names_and_confinement_accept_only_what_samizdat_makes():
    """The pipeline's names pass both checks; anything leaving its directory passes neither."""
    from mirror.partnames import is_part_name
    from samizdat.paths import confined_name

    for role, name in (("page", "index.html"), ("warc", "capture.warc.gz"), ("offline", "offline.html"),
                       ("asset", "assets/0123456789abcdef0123.png"), ("page", "page.bin")):
        assert is_part_name(role, name) and confined_name(name) == name
    for role, name in (("asset", "assets/0123456789abcdef0123.png/../../x"), ("page", HOSTILE),
                       ("asset", "assets/0123456789abcdef0123"), ("manifest", "index.html")):
        assert not is_part_name(role, name)
    for bad in (HOSTILE, "/etc/passwd", "a//b", "a/./b", "a\\..\\b", "", "a\x00b"):
        with pytest.raises(UnsafePathError):
            confined_name(bad)
