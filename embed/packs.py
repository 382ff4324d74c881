"""Static, signed fragment packs: what every embed view reads instead of asking the server.

A pack is the set of approved fragments of one collection (or of all), optionally of one
language, that the provenance log vouches for (provenance.decisions.logged_approvals). It is
written as content-addressed *shards* (canonical JSON, each well under 256 KiB, immutable,
cacheable forever) and a small *index* that names the shards by sha256, counts their fragments
and is signed with the project's Ed25519 key. A client verifies the index signature,
picks a uniform random position in ``[0, count)``, fetches the one shard that holds it and checks
that shard's sha256 against the index before showing anything.

Layout under the output directory (the same paths go to the app's static route, S3 and IPFS)::

    packs/key.json                       the public keys (a JWK set): the current one first
    packs/catalog.json                   signed: every pack with its counts and path
    packs/<slug>/index.json              signed index of one collection ("all" for every one)
    packs/<slug>/lang/<code>/index.json  the same, one language
    packs/shards/<sha256>.json           shards, shared by every pack that has the same ones

An index names its shards by sha256 only; a shard's path is always ``shards/<sha256>.json``
under the same ``packs/`` root the index came from. A pack with more shards than one index may
list names *tables* instead (``shards/<sha256>.json`` too), each listing up to 1,000 shards.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from embed.logged import PackLog
from embed.signing import PackSigner
from fragments.models import APPROVED, Fragment
from fragments.store import fragment_as_dict
from mirror.reader import capture_link_path
from provenance.decisions import LoggedDecision, logged_approvals
from provenance.models import LoggedDecisionRow
from samizdat.atomicfile import write_atomic

PACK_FORMAT = "samizdat-pack/1"
ALL = "all"
# Shards stay well under the 256 KiB that one page view may fetch, leaving room for the
# largest single fragment (1,000 characters of text plus attribution) on top of the target.
SHARD_TARGET_BYTES = 192 * 1024
MAX_REQUEST_BYTES = 256 * 1024
# An index (or a table) names at most this many shards, about 100 bytes each: ~100 KiB.
MAX_INDEX_SHARDS = 1000
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_STREAM = 2000  # fragments read (and checked against the log) at a time


def canonical_json(value) -> bytes:
    """One byte-exact serialisation: sorted keys, no spaces, UTF-8 (what is hashed and signed)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def pack_slug(collection: str | None) -> str:
    """The path segment of a collection's pack: its name when URL-safe, else a readable hash.

    Collection names are free text (spaces, slashes, Vietnamese); paths on S3, IPFS and static
    hosts must not depend on how each of them decodes those.
    """
    if collection is None:
        return ALL
    if _SLUG.fullmatch(collection) and collection != ALL and collection != "shards":
        return collection
    readable = re.sub(r"[^a-z0-9]+", "-", collection.lower()).strip("-")[:40] or "c"
    return f"{readable}-{hashlib.sha256(collection.encode()).hexdigest()[:10]}"


def pack_entry(fragment: Fragment) -> dict:
    """A fragment as a pack carries it: the public shape and a reader link relative to the archive.

    The link points at the passage of the text as split (an edited fragment's original), the only
    text the archived page holds.
    """
    quoted = fragment.split_text
    return {
        **fragment_as_dict(fragment),
        # Relative, so a pack read from S3, a gateway or a supporter's own copy keeps its link.
        "link": capture_link_path(fragment.capture_id, quoted).lstrip("/"),
    }


@dataclass(frozen=True)
class PackSpec:
    """Which approved fragments one pack holds."""

    collection: str | None  # None: every collection
    language: str | None  # None: every language

    @property
    def path(self) -> str:
        """The pack's directory under ``packs/``."""
        base = pack_slug(self.collection)
        return f"{base}/lang/{self.language}" if self.language else base


@dataclass
class PublishReport:
    """What one publish wrote: files and bytes (new shards only), and the largest file."""

    packs: int = 0
    fragments: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    bytes_written: int = 0
    largest_file: int = 0
    serial: int = 0
    # When the signed indexes were made and when they stop being believed (ISO 8601, UTC).
    generated_at: str = ""
    expires: str = ""
    # Every file the published packs consist of (written now or kept from before), under packs/.
    files: list[str] = field(default_factory=list)


def _approved(session: Session, spec: PackSpec):
    query = select(Fragment).where(Fragment.status == APPROVED)
    if spec.collection is not None:
        query = query.where(Fragment.collection == spec.collection)
    if spec.language is not None:
        query = query.where(Fragment.language == spec.language)
    # Oldest decision first: newly approved fragments land in the last shard, so the earlier
    # shards (and every cache holding them) stay valid from one publish to the next.
    return query.order_by(Fragment.reviewed_at, Fragment.id)


def pack_specs(session: Session) -> list[PackSpec]:
    """Every pack to write: all, each collection, and each of those per language."""
    rows = session.execute(
        select(Fragment.collection, Fragment.language)
        .where(Fragment.status == APPROVED)
        .group_by(Fragment.collection, Fragment.language)
    ).all()
    collections = sorted({c for c, _ in rows if c is not None})
    specs = [PackSpec(None, None)] + [PackSpec(c, None) for c in collections]
    languages = sorted({lang for _, lang in rows if lang})
    specs += [PackSpec(None, lang) for lang in languages]
    specs += [PackSpec(c, lang) for c, lang in sorted({r for r in rows if r[0] and r[1]})]
    return specs


def _logged(session: Session, spec: PackSpec) -> Iterator[tuple[Fragment, LoggedDecision]]:
    """The pack's approved fragments that the published log vouches for, streamed in order,
    each with its logged decision.

    An approval not yet under a signed checkpoint waits for the next publish; a text changed
    since its logged decision (its sha256 no longer the logged one) is left out.
    """
    query = _approved(session, spec).execution_options(yield_per=_STREAM)
    for chunk in session.scalars(query).partitions():
        logged = logged_approvals(session, [fragment.id for fragment in chunk])
        yield from ((fragment, logged[fragment.id]) for fragment in chunk if fragment.id in logged)


def _shards(session: Session, spec: PackSpec, target: int = SHARD_TARGET_BYTES,
            log: PackLog | None = None) -> Iterator[tuple[bytes, int]]:
    """The pack's shards as (canonical bytes, fragment count), streamed from the database.

    With a ``log``, each fragment carries its decision entry and inclusion proof under the log's
    checkpoint (one logged after that checkpoint waits for the next publish).
    """
    entries: list[bytes] = []
    size = 0
    for fragment, decision in _logged(session, spec):
        carried = pack_entry(fragment)
        if log is not None:
            proof = log.proof_of(decision, fragment.text)
            if proof is None:
                continue
            carried["log"] = proof
        entry = canonical_json(carried)
        if entries and size + len(entry) > target:
            yield _shard_bytes(entries), len(entries)
            entries, size = [], 0
        entries.append(entry)
        size += len(entry) + 1
    if entries:
        yield _shard_bytes(entries), len(entries)


def _shard_bytes(entries: list[bytes]) -> bytes:
    # Entries are canonical already; joining them keeps the whole shard canonical.
    return b'{"format":"' + PACK_FORMAT.encode() + b'","fragments":[' + b",".join(entries) + b"]}"


def write_public(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (readers see the old file or the new one, never half),
    readable by the web server whatever the umask."""
    write_atomic(path, data, mode=0o644)


def signed_envelope(signers: list[PackSigner], payload: dict) -> bytes:
    """``payload`` as canonical JSON inside an envelope carrying one Ed25519 signature per key.

    The payload travels as a string so the client verifies exactly the bytes that were signed,
    then parses them; no re-serialisation can change what the signature covers. Several keys
    sign during a rotation, so embed.js copies that still carry the old key keep working.
    """
    text = canonical_json(payload).decode()
    signatures = [{"alg": "Ed25519", "kid": s.key_id, "signature": s.sign(text.encode())} for s in signers]
    return canonical_json({"payload": text, "signatures": signatures})


def _next_serial(out_dir: Path) -> int:
    """Milliseconds since the epoch, but always above the last published serial.

    Clients refuse an index older than one they have seen, so a replayed old index (a stale
    mirror, or an attacker holding an earlier signed copy) cannot roll fragments back.
    """
    last = 0
    catalog = out_dir / "packs" / "catalog.json"
    if catalog.exists():
        try:
            last = int(json.loads(json.loads(catalog.read_bytes())["payload"])["serial"])
        except (ValueError, KeyError, TypeError):
            last = 0
    return max(int(time.time() * 1000), last + 1)


def publish_packs(
    session: Session, signers: list[PackSigner], out_dir: Path, *, ttl: timedelta,
    shard_bytes: int = SHARD_TARGET_BYTES, index_shards: int = MAX_INDEX_SHARDS,
    log: PackLog | None = None,
) -> PublishReport:
    """Write every pack (shards, signed indexes, signed catalogue, public keys) under ``out_dir``.

    ``signers[0]`` is the current key; any others are retired keys still signing during a rotation.
    Indexes and the catalogue carry a signed ``expires``, ``ttl`` from now.
    A pack of more than ``index_shards`` shards lists them in content-addressed *tables* of that
    many, and its index lists the tables: the index stays small however large the pack grows.
    With a ``log``, every index carries its signed checkpoint and every shard entry its proof.
    """
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # Signed, so a stale copy (an origin that missed publishes, a hostile mirror, the CID an old
    # embed.js names) stops being believed, and a fragment rejected since stops being shown.
    generated_at, expires = now.isoformat(), (now + ttl).isoformat()
    report = PublishReport(serial=_next_serial(out_dir), generated_at=generated_at, expires=expires)
    root = out_dir / "packs"
    catalog = []

    def write(rel: str, data: bytes) -> None:
        write_public(root / rel, data)
        report.bytes_written += len(data)
        report.largest_file = max(report.largest_file, len(data))
        report.files.append(rel)

    def content_addressed(data: bytes, count: int) -> dict:
        """Write ``data`` under shards/<sha256>.json unless it is there; return its entry."""
        digest = hashlib.sha256(data).hexdigest()
        rel = f"shards/{digest}.json"
        if (root / rel).exists():
            report.shards_reused += 1
            report.largest_file = max(report.largest_file, len(data))
            report.files.append(rel)
        else:
            write(rel, data)
            report.shards_written += 1
        return {"sha256": digest, "count": count, "bytes": len(data)}

    for spec in pack_specs(session):
        shards, count = [], 0
        for data, n in _shards(session, spec, shard_bytes, log):
            shards.append(content_addressed(data, n))
            count += n
        listing: dict = {"shards": shards}
        if len(shards) > index_shards:
            tables = []
            for start in range(0, len(shards), index_shards):
                group = shards[start:start + index_shards]
                table = canonical_json({"format": PACK_FORMAT, "shards": group})
                tables.append({**content_addressed(table, sum(e["count"] for e in group)),
                               "shards": len(group)})
            listing = {"tables": tables}
        index = {
            "format": PACK_FORMAT,
            # The path is signed too: an index valid for one pack cannot be served as another's.
            "pack": spec.path,
            "collection": spec.collection,
            "language": spec.language,
            "count": count,
            **listing,
            "generated_at": generated_at,
            "expires": expires,
            "serial": report.serial,
        }
        if log is not None:
            # The signed note as published (cosignatures too): the proofs in the shards lead to
            # its root, and embed.js checks its signatures against the keys it pins.
            index["checkpoint"] = log.checkpoint_note.decode()
        write(f"{spec.path}/index.json", signed_envelope(signers, index))
        catalog.append({"collection": spec.collection, "language": spec.language,
                        "count": count, "path": f"{spec.path}/index.json"})
        report.packs += 1
        if spec == PackSpec(None, None):
            report.fragments = count
    write("key.json", canonical_json({"keys": [s.public_jwk() for s in signers]}))
    write("catalog.json", signed_envelope(signers, {
        "format": PACK_FORMAT, "packs": catalog, "generated_at": generated_at, "expires": expires,
        "serial": report.serial,
    }))
    return report


def curation_fingerprint(session) -> str:
    """What the packs depend on, in cheap indexed queries: approved count, latest decisions, and
    the last decision the published log holds (packs carry only logged approvals, so a checkpoint
    that logs one is a change to publish)."""
    count, reviewed, edited = session.execute(
        select(
            func.count().filter(Fragment.status == APPROVED),
            func.max(Fragment.reviewed_at),
            func.max(Fragment.edited_at),
        )
    ).one()
    logged = session.scalar(select(func.max(LoggedDecisionRow.log_index))
                            .where(LoggedDecisionRow.published.is_(True)))
    return f"{count}|{reviewed}|{edited}|{logged}"
