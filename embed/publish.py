"""`flask embed publish`: packs, embed.js and the frame page, written where supporters' pages load them.

Everything here is static: a page view costs the server nothing, and any copy (the app's own
route, S3, an IPFS gateway, a supporter's own site) serves the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path

import rcssmin
import rjsmin
from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from embed.logged import PackLog, read_pack_log
from embed.packs import PublishReport, curation_fingerprint, pack_entry, publish_packs, write_public
from embed.signing import PackSigner, load_or_create_signer, load_retired_signer
from fragments.models import APPROVED, Fragment
from mirror.storage.sites import IpfsSite, S3Site, SiteFile, SiteReport, StaticSite
from provenance.appender import (
    AppendReport,
    append_log,
    published_verifier_key,
    witness_log_checkpoint,
)
from provenance.decisions import logged_approvals
from provenance.errors import LogBusyError, ProvenanceError
from provenance.freshness import note_policy_time
from provenance.note import Ed25519Verifier
from provenance.keyring import retired_paths, revoked_ids
from samizdat.errors import StorageError

EMBED_JS = "embed.js"
S3_PREFIX = "embed"  # the same layout everywhere: <base>/embed.js, <base>/packs/…
FRAME_HTML = "frame.html"
_CONFIG_MARK = "/*SAMIZDAT_CONFIG*/{}"


def _asset(name: str) -> str:
    return resources.files("embed").joinpath("assets", name).read_text(encoding="utf-8")


def widget_words() -> dict[str, dict[str, str]]:
    """The widget's own words per language: one catalogue file each in embed/words/."""
    words = {}
    for entry in resources.files("embed").joinpath("words").iterdir():
        if entry.name.endswith(".json"):
            words[entry.name[:-5]] = json.loads(entry.read_text(encoding="utf-8"))
    return words


@dataclass(frozen=True)
class Locations:
    """Where the published files are reachable from outside, known before embed.js is built."""

    ipfs_packs_cid: str | None = None  # the packs/ directory of this publish
    ipns_name: str | None = None


def embed_origins(settings: Settings, where: Locations) -> list[dict]:
    """Where embed.js looks for packs, in order: each entry's ``packs`` is a base URL of ``packs/``.

    The app first, then S3, then every gateway by this publish's CID (immutable: it still works
    when the name system is blocked) and by the IPNS name (always the latest).
    """
    app = settings.public_url.rstrip("/") + "/embed/packs/"
    # Only the app's own https origin may be believed without a signature (browsers lacking
    # Ed25519 in WebCrypto): TLS to our own name is then what vouches for the bytes.
    origins = [{"packs": app, "trustedWithoutSignature": app.startswith("https://")}]
    if settings.s3_public_base:
        origins.append({"packs": f"{settings.s3_public_base}/{S3_PREFIX}/packs/"})
    for gateway in settings.gateway_list:
        if where.ipfs_packs_cid:
            origins.append({"packs": f"{gateway}/ipfs/{where.ipfs_packs_cid}/"})
        if where.ipns_name:
            origins.append({"packs": f"{gateway}/ipns/{where.ipns_name}/packs/"})
    return origins


def witness_policy(settings: Settings) -> tuple[list[str], int]:
    """The witnesses' verifier keys and how many of them must cosign a checkpoint.

    From the witness settings (``SAMIZDAT_WITNESSES``: ``vkey URL`` entries, comma- or
    newline-separated; ``SAMIZDAT_WITNESS_QUORUM``, 0 meaning 1 when any witness is listed),
    read defensively: through ``witness_list``/``witness_quorum_count`` where the settings have
    them, from the raw values otherwise, and no witnesses where neither exists.
    """
    listed = getattr(settings, "witness_list", None)
    if listed is not None:
        vkeys = [entry[0] for entry in listed]
        quorum = int(getattr(settings, "witness_quorum_count", 1 if vkeys else 0))
    else:
        raw = str(getattr(settings, "witnesses", "") or "")
        vkeys = [item.split()[0] for item in raw.replace("\n", ",").split(",") if item.split()]
        quorum = int(getattr(settings, "witness_quorum", 0) or 0) or (1 if vkeys else 0)
    vkeys = list(dict.fromkeys(vkeys))
    return vkeys, min(max(quorum, 0), len(vkeys))


def widget_log_config(settings: Settings, log_vkey: str) -> dict:
    """What embed.js pins of the log: its verifier key, the witness policy and the oldest
    checkpoint it accepts (``maxAge`` seconds, 0: any age)."""
    witnesses, quorum = witness_policy(settings)
    max_age = int(getattr(settings, "embed_checkpoint_max_age_hours", 0) * 3600)
    return {"key": log_vkey, "witnesses": witnesses, "quorum": quorum, "maxAge": max_age}


def packs_checkpoint_time(log: PackLog, config: dict) -> int | None:
    """When the checkpoint the packs carry is fresh as of under the widget's policy (``config``,
    :func:`widget_log_config`): as embed.js computes it; None when the policy is not met."""
    try:
        return note_policy_time(log.checkpoint_note, log.checkpoint.origin,
                                Ed25519Verifier.from_vkey(log.vkey), config["witnesses"],
                                config["quorum"])
    except ProvenanceError:
        return None


def build_embed_js(
    signer: PackSigner, settings: Settings, where: Locations = Locations(), origins: list[dict] | None = None,
    log: dict | None = None,
) -> bytes:
    """embed.js with its configuration (public key, origins, words, style) built in.

    ``origins`` replaces the published ones (a self-hosted copy reads only ``packs/`` beside it).
    ``log`` (widget_log_config) pins the log key and witness policy: such an embed.js shows only
    fragments proven to be in the log under a checkpoint that policy accepts.
    """
    config = {
        "key": signer.public_key,
        "kid": signer.key_id,
        "origins": embed_origins(settings, where) if origins is None else origins,
        "archive": settings.public_url.rstrip("/") + "/",
        "words": widget_words(),
        "css": rcssmin.cssmin(_asset("embed.css")),
    }
    if log:
        config["log"] = log
    # "</" is escaped so the configuration can never close a surrounding <script> element.
    text = json.dumps(config, ensure_ascii=False, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    source = _asset(EMBED_JS)
    assert _CONFIG_MARK in source
    # Minified after the configuration is in (the marker is a comment the minifier would drop).
    return rjsmin.jsmin(source.replace(_CONFIG_MARK, text)).encode()


def versioned_script_name(script: bytes) -> str:
    """embed.<hash>.js: the name snippets use, so the bytes their integrity attribute names stay
    available however often embed.js changes (new origins, a new key)."""
    return f"embed.{hashlib.sha256(script).hexdigest()[:16]}.js"


def subresource_integrity(data: bytes) -> str:
    """The ``integrity`` attribute value (sha384) for a script tag loading ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def _fallback_fragment(session: Session) -> dict | None:
    """One approved fragment the log vouches for, to show before (or without) JavaScript in the
    frame page."""
    ids = list(session.scalars(select(Fragment.id).where(Fragment.status == APPROVED).limit(200)))
    logged = sorted(logged_approvals(session, ids))
    if not logged:
        return None
    return pack_entry(session.get(Fragment, random.choice(logged)))


def build_frame_html(session: Session, settings: Settings) -> bytes:
    """The static frame page: a genuine fragment as plain HTML, then embed.js."""
    env = Environment(autoescape=True)
    template = env.from_string(_asset(FRAME_HTML))
    return template.render(
        fragment=_fallback_fragment(session),
        archive=settings.public_url.rstrip("/") + "/",
        words=widget_words()["en"],
    ).encode()


@dataclass
class EmbedPublishReport:
    """What one publish produced: packs, embed.js's size and integrity, and each site's result."""

    packs: PublishReport
    embed_js_bytes: int
    embed_js_integrity: str
    key_id: str
    sites: list[SiteReport]
    failures: list[str]
    embed_js_versioned: str = EMBED_JS
    log: dict | None = None  # what embed.js pins of the log (widget_log_config), if anything
    # Why the log was not appended first (another writer held it), so only what it held is out.
    log_note: str | None = None
    # When the indexes' checkpoint is fresh as of under the widget's policy (unix seconds; None:
    # no log, or the policy is not met): the scheduler republishes before widgets find it too old.
    checkpoint_time: int | None = None


IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"


def _pack_files(out: Path, packs: PublishReport) -> list[SiteFile]:
    """The published pack files as site files, shards marked immutable."""
    files = []
    for rel in packs.files:
        immutable = rel.startswith("shards/")
        files.append(SiteFile(f"packs/{rel}", out / "packs" / rel, "application/json",
                              IMMUTABLE if immutable else SHORT, immutable))
    return files


def remote_sites(settings: Settings) -> list[StaticSite]:
    """The configured public sites: an S3 prefix and an IPFS directory."""
    sites: list[StaticSite] = []
    if settings.s3_bucket:
        sites.append(S3Site(settings.s3_bucket, S3_PREFIX, settings.s3_endpoint_url, settings.s3_region))
    if settings.ipfs_api:
        sites.append(IpfsSite(settings.ipfs_api, S3_PREFIX, settings.ipfs_timeout))
    return sites


# A log pass takes well under a second: one that holds the lock is waited for this long before
# publishing without this publish's own pass.
LOG_WAIT_SECONDS = 3.0


def _append_log_soon(session: Session, settings: Settings) -> AppendReport:
    """One log pass (provenance.appender.append_log), waiting a little for another writer's."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        try:
            return append_log(session, settings)
        except LogBusyError:
            session.rollback()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


def previous_signers(session: Session, settings: Settings, current: PackSigner) -> list[PackSigner]:
    """The retired pack keys that still co-sign, so embed.js copies built with them keep working:
    the configured ones and those `flask keys rotate pack` kept, less any revoked (a revoked key
    signs nothing from the moment it is revoked, logged or still queued)."""
    revoked = revoked_ids(settings, session, "pack")
    signers, seen = [], {current.key_id}
    for path in [*settings.embed_previous_key_paths, *retired_paths(settings, "pack")]:
        signer = load_retired_signer(path)
        if signer.key_id not in seen and signer.key_id not in revoked:
            signers.append(signer)
            seen.add(signer.key_id)
    return signers
def pack_log(settings: Settings) -> PackLog | None:
    """The log the packs are built against: its checkpoint and tiles; None before the appender
    has published a log (packs then carry no proofs and embed.js pins no log key).

    The log's public verifier key, published beside its checkpoint, is what embed.js pins.
    """
    vkey = published_verifier_key(settings.log_path)
    if vkey is None:
        return None
    try:
        return read_pack_log(settings.log_path, vkey)
    except ProvenanceError as exc:
        # A log that cannot be read must not publish packs without proofs behind its back: the
        # embed.js pinning its key would refuse them anyway. Publish nothing new until fixed.
        raise StorageError(f"the provenance log cannot be read: {exc}") from exc


def publish_embed(
    session: Session, settings: Settings, fingerprint: str | None = None, **pack_options
) -> EmbedPublishReport:
    """Append the log, then write packs, embed.js and frame.html to the public directory, S3 and
    IPFS. Commits ``session``.

    Packs carry only what the log holds, so a pass of the log appender runs first: decisions
    made just before a publish are in it. When the log cannot be appended (another writer holds
    it), what it already holds is published and the report says why. A site that fails is
    reported and skipped: the others (and the app's own copy) still publish, and the next
    publish brings it up to date. Packs carry their proofs under the log's checkpoint, and
    embed.js pins the log's key.
    """
    log_note = None
    try:
        if _append_log_soon(session, settings).published:
            # What the packs depend on changed just now; a fingerprint taken before would make
            # the debouncer publish the same packs once more.
            fingerprint = curation_fingerprint(session)
            # The new checkpoint is cosigned before the indexes carry it: a widget pinning a
            # witness policy refuses one without the cosignatures it needs.
            witness_log_checkpoint(settings)
    except ProvenanceError as exc:
        session.rollback()
        log_note = (f"the log was not appended ({exc}): only what it already holds is "
                    "published; the next publish after the log's next pass brings the rest")
    signer = load_or_create_signer(settings.embed_signing_key_path)
    retired = previous_signers(session, settings, signer)
    out: Path = settings.public_path
    log = pack_log(settings)
    # pack_options (shard_bytes, index_shards) let tests build many small shards and tables.
    packs = publish_packs(session, [signer, *retired], out,
                          ttl=timedelta(hours=settings.embed_index_ttl_hours), log=log, **pack_options)
    log_config = widget_log_config(settings, log.vkey) if log else None
    checkpoint_time = packs_checkpoint_time(log, log_config) if log else None
    pack_files = _pack_files(out, packs)
    sites, failures, where = [], [], Locations()
    for site in remote_sites(settings):
        report = SiteReport(site.name)
        try:
            site.put(pack_files, report)
            if isinstance(site, IpfsSite):
                shards = {f.path.rsplit("/", 1)[1] for f in pack_files if f.immutable}
                site.prune("packs/shards", shards)
                where = Locations(site.directory_cid("packs"), site.ipns_name())
            sites.append((site, report))
        except StorageError as exc:
            failures.append(f"{site.name}: {exc}")
    script = build_embed_js(signer, settings, where, log=log_config)
    frame = build_frame_html(session, settings)
    versioned = versioned_script_name(script)
    write_public(out / EMBED_JS, script)
    write_public(out / versioned, script)
    write_public(out / FRAME_HTML, frame)
    js = "text/javascript; charset=utf-8"
    assets = [SiteFile(EMBED_JS, script, js, "public, max-age=300"),
              SiteFile(versioned, script, js, IMMUTABLE, immutable=True),
              SiteFile(FRAME_HTML, frame, "text/html; charset=utf-8", "public, max-age=300")]
    for site, report in sites:
        try:
            site.put(assets, report)
            if isinstance(site, IpfsSite):
                site.publish_root(report)
        except StorageError as exc:
            failures.append(f"{site.name}: {exc}")
    result = EmbedPublishReport(packs, len(script), subresource_integrity(script), signer.key_id,
                                [r for _, r in sites], failures, versioned, log=log_config,
                                log_note=log_note, checkpoint_time=checkpoint_time)
    if fingerprint is None:
        fingerprint = curation_fingerprint(session)
    state = {**published_state(result), "fingerprint": fingerprint}
    write_public(out / PUBLISHED_STATE, json.dumps(state, indent=2).encode())
    return result


PUBLISHED_STATE = "published.json"


def published_state(report: EmbedPublishReport) -> dict:
    """What the snippet builder needs to know of the last publish (no secrets in here)."""
    ipfs = next((s for s in report.sites if s.site == "ipfs"), None)
    return {
        "serial": report.packs.serial,
        "generated_at": report.packs.generated_at,
        "expires": report.packs.expires,
        "fragments": report.packs.fragments,
        "key_id": report.key_id,
        "embed_js_integrity": report.embed_js_integrity,
        "embed_js": report.embed_js_versioned,
        "embed_js_bytes": report.embed_js_bytes,
        "ipfs_root": ipfs.root_cid if ipfs else None,
        "ipns_name": ipfs.ipns_name if ipfs else None,
        "sites": [s.site for s in report.sites],
        "failures": report.failures,
        # The self-host copy of embed.js must pin what the published one pins.
        "log": report.log,
        "checkpoint_time": report.checkpoint_time,
    }
