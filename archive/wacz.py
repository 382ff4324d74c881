"""WACZ 1.1.1 export of a source's or a collection's captures, and its download routes.

A WACZ is a ZIP that replay tools (ReplayWeb.page, pywb) open as a web archive: the captures'
WARCs under ``archive/``, a CDXJ index of them under ``indexes/``, the captured pages in
``pages/pages.jsonl``, ``datapackage.json`` with every file's size and sha256, and
``datapackage-digest.json`` with that file's sha256 signed by the project's WACZ key
(archive/wacz_signing.py), and under ``provenance/`` the log proofs of the captures the public log
holds (their entries, inclusion proofs, the checkpoint, the log's key, its time-stamp tokens), so
the WACZ verifies offline (docs/provenance.md). The builder is Flask-free (the CLI and a static
export call it); the routes only choose what to export.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import IO

from cdxj_indexer.main import CDXJIndexer, SortingWriter
from flask import Blueprint, abort, jsonify, send_file
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.wacz_signing import DomainSigner, WaczSigner, load_wacz_signer, wacz_signer_for
from mirror.models import Capture, CapturePart, Source
from mirror.storage import BlobStore
from mirror.warc import page_hops
from provenance.appender import logged_index, published_verifier_key
from provenance.errors import ProvenanceError
from provenance.log import LogClient
from provenance.note import MAX_NOTE_BYTES, Ed25519Verifier, b64encode, open_checkpoint
from provenance.tiles import CHECKPOINT_PATH, DirectoryFetcher
from samizdat.errors import SamizdatError
from samizdat.paths import confined_name
from samizdat.web import db_session, runtime

WACZ_VERSION = "1.1.1"
SOFTWARE = f"Samizdat archive (cdxj-indexer {version('cdxj-indexer')})"
INDEX_PATH = "indexes/index.cdx"
PAGES_PATH = "pages/pages.jsonl"

log = logging.getLogger(__name__)

bp = Blueprint("wacz", __name__)


class NothingToExport(SamizdatError):
    """The source or collection is unknown, or has no stored capture to export."""


@dataclass(frozen=True)
class ExportedCapture:
    """One successful capture as the export needs it: its page URL, date, title and WARC blob."""

    capture_id: int
    url: str
    fetched_at: datetime
    title: str | None
    warc_sha256: str
    warc_size: int
    log_index: int | None = None  # its entry in the public log, once a checkpoint covers it

    @property
    def warc_name(self) -> str:
        """The WARC's file name inside ``archive/`` (unique per capture, as the index needs)."""
        return f"capture-{self.capture_id}.warc.gz"


@dataclass(frozen=True)
class WaczSelection:
    """What one WACZ holds: a title, a description, a file name to offer, and its captures."""

    title: str
    description: str
    filename: str
    captures: list[ExportedCapture]
    main_page_url: str | None = None


@dataclass(frozen=True)
class WaczSummary:
    """What an export wrote: how many captures, and the size of the file."""

    captures: int
    bytes: int


def _stored_captures(session: Session, sources: list[Source]) -> list[ExportedCapture]:
    """Every successful capture of ``sources`` that has a WARC, oldest first."""
    if not sources:
        return []
    rows = session.execute(
        select(Capture, CapturePart)
        .join(CapturePart, CapturePart.capture_id == Capture.id)
        .where(
            Capture.source_id.in_([s.id for s in sources]),
            Capture.status == "ok",
            CapturePart.role == "warc",
        )
        .order_by(Capture.fetched_at, Capture.id)
    ).all()
    return [
        ExportedCapture(c.id, c.url, c.fetched_at, c.title, part.sha256, part.size,
                        logged_index(session, c.id))
        for c, part in rows
    ]


def source_selection(session: Session, source_id: int) -> WaczSelection:
    """The captures of one live source; NothingToExport when it is unknown or has none."""
    source = session.get(Source, source_id)
    # A deleted source is hidden from readers, so it is not exported either.
    if source is None or source.deleted_at is not None:
        raise NothingToExport(f"no source with id {source_id}")
    captures = _stored_captures(session, [source])
    if not captures:
        raise NothingToExport(f"source {source_id} has no stored capture to export yet")
    return WaczSelection(
        title=f"Samizdat: {source.url}",
        description=f"Every stored capture of {source.url} kept by Samizdat",
        filename=f"samizdat-source-{source_id}.wacz",
        captures=captures,
        main_page_url=source.url,
    )


def collection_selection(session: Session, name: str) -> WaczSelection:
    """The captures of every live source in collection ``name``; NothingToExport when the
    collection has no source or no stored capture."""
    sources = list(
        session.scalars(
            select(Source).where(Source.collection == name, Source.deleted_at.is_(None))
        )
    )
    if not sources:
        raise NothingToExport(f"no collection named {name!r}")
    captures = _stored_captures(session, sources)
    if not captures:
        raise NothingToExport(f"collection {name!r} has no stored capture to export yet")
    # The name is free text: keep the offered file name to safe characters.
    slug = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in name)
    return WaczSelection(
        title=f"Samizdat collection {name}",
        description=f"Every stored capture of the {len(sources)} pages of collection {name}",
        filename=f"samizdat-collection-{slug[:60] or 'unnamed'}.wacz",
        captures=captures,
    )


def _iso(when: datetime) -> str:
    """An RFC 3339 UTC date, as datapackage.json and pages.jsonl want it."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page_entry(capture: ExportedCapture, warc: bytes) -> dict:
    """The pages.jsonl line of a capture, dated like its first WARC record so a replay tool
    finds the exact record (fetched_at is taken just before the request was sent)."""
    hops = page_hops(warc)
    entry = {
        "id": f"capture-{capture.capture_id}",
        "url": hops[0]["url"] if hops else capture.url,
        # An uploaded document's WARC has no HTTP exchange; its record is dated fetched_at.
        "ts": hops[0]["date"] if hops else _iso(capture.fetched_at),
    }
    if capture.title:
        entry["title"] = capture.title
    return entry


def _dated(path: str, when: datetime) -> zipfile.ZipInfo:
    """A ZIP entry for ``path`` dated ``when``."""
    return zipfile.ZipInfo(path, date_time=when.timetuple()[:6])


def write_wacz(
    store: BlobStore,
    selection: WaczSelection,
    out: IO[bytes],
    progress: Callable[[int], None] | None = None,
    *,
    signer: WaczSigner | DomainSigner,
    log_path: Path | None = None,
) -> WaczSummary:
    """Write ``selection`` as a WACZ to the seekable binary stream ``out``, signed by ``signer``,
    with the proofs of the log published in ``log_path`` for the captures it holds.

    The WARCs come from ``store`` (the local spool) one at a time, each indexed with
    cdxj-indexer as it is added, so memory holds one WARC at a time. ``progress`` is called
    with 1 after each capture. StorageError when a WARC cannot be read.
    """
    resources: list[dict] = []
    pages: list[dict] = []
    start = out.tell()
    now = datetime.now(timezone.utc)
    with zipfile.ZipFile(out, "w", allowZip64=True) as zf, tempfile.TemporaryFile() as index:

        def add(path: str, source: IO[bytes], compress: int) -> None:
            """Copy ``source`` into the ZIP as ``path`` (dated now) and list it as a resource."""
            info = _dated(confined_name(path), now)
            info.compress_type = compress
            # Known ahead, the size lets zipfile use ZIP64 for exactly the members that need it.
            info.file_size = source.seek(0, io.SEEK_END)
            source.seek(0)
            digest, size = hashlib.sha256(), 0
            with zf.open(info, "w") as member:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    member.write(chunk)
            resources.append(
                {
                    "name": path.rsplit("/", 1)[-1].lower(),
                    "path": path,
                    "hash": "sha256:" + digest.hexdigest(),
                    "bytes": size,
                }
            )

        # cdxj-indexer's own sort, which spills to temporary files past 32 MiB of lines; the
        # sorted index goes to a temporary file too, so no export holds its index in memory.
        index_text = io.TextIOWrapper(index, encoding="utf-8", newline="\n", write_through=True)
        sorter = SortingWriter(index_text)
        for capture in selection.captures:
            warc = store.get(capture.warc_sha256)
            # Stored, not deflated: replay tools read WARC records by offset with range requests.
            add(f"archive/{capture.warc_name}", io.BytesIO(warc), zipfile.ZIP_STORED)
            # filename is the WARC's name inside archive/, which is how WACZ readers resolve it.
            CDXJIndexer(sorter, [io.BytesIO(warc)], filename=capture.warc_name).process_all()
            pages.append(_page_entry(capture, warc))
            if progress is not None:
                progress(1)
        sorter.flush()
        add(INDEX_PATH, index, zipfile.ZIP_DEFLATED)
        header = {"format": "json-pages-1.0", "id": "pages", "title": selection.title}
        jsonl = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in [header, *pages])
        add(PAGES_PATH, io.BytesIO(jsonl.encode("utf-8")), zipfile.ZIP_DEFLATED)
        # Resources like the rest, so datapackage.json (and the signature over it) covers them.
        for path, data in log_proofs(log_path, selection.captures) if log_path else []:
            add(path, io.BytesIO(data), zipfile.ZIP_DEFLATED)

        package = {
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": selection.title,
            "description": selection.description,
            # Dated when it is signed, not when the export began: a domain-mode signature's
            # time-stamp must follow its `created` within minutes, however long the WARCs took.
            "created": _iso(datetime.now(timezone.utc)),
            "software": SOFTWARE,
            "resources": resources,
        }
        if selection.main_page_url:
            package["mainPageUrl"] = selection.main_page_url
            package["mainPageDate"] = pages[-1]["ts"]
        package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode("utf-8")
        # Not resources themselves: written as they are, not listed.
        zf.writestr(_dated("datapackage.json", now), package_bytes, zipfile.ZIP_DEFLATED)
        package_hash = "sha256:" + hashlib.sha256(package_bytes).hexdigest()
        digest = {
            "path": "datapackage.json",
            "hash": package_hash,
            # Dated as the package is: verifiers refuse a signature whose date differs from it.
            "signedData": signer.signed_data(package_hash, package["created"], SOFTWARE),
        }
        zf.writestr(
            _dated("datapackage-digest.json", now), json.dumps(digest, indent=2),
            zipfile.ZIP_DEFLATED,
        )
    return WaczSummary(captures=len(selection.captures), bytes=out.tell() - start)


# One level deep, each file name unique: py-wacz's validator only finds files listed by their
# last two path segments, and frictionless refuses two resources of the same name.
PROVENANCE_DIR = "provenance"
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}\.tsr")


def log_proofs(log_path: Path, captures: list[ExportedCapture]) -> list[tuple[str, bytes]]:
    """The files under ``provenance/`` for the ``captures`` the log in ``log_path`` holds: each
    one's entry bytes and inclusion proof, and once the checkpoint note they are proven against,
    the log's verifier key and the checkpoint's time-stamp tokens. Empty when the log holds none
    of them; a log that does not verify is logged and left out, never exported as proof."""
    logged = [c for c in captures if c.log_index is not None]
    vkey = published_verifier_key(log_path)
    if not logged or vkey is None:
        return []
    try:
        verifier = Ed25519Verifier.from_vkey(vkey)
        fetcher = DirectoryFetcher(log_path)
        # Read once: the checkpoint may be replaced while we export; the proofs follow this one.
        note = fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
        checkpoint, _ = open_checkpoint(note, verifier.name, verifier)
        client = LogClient(fetcher, verifier.name, verifier)
        files = []
        for capture in logged:
            if capture.log_index >= checkpoint.size:
                continue
            inclusion = client.prove_inclusion(checkpoint, capture.log_index)
            index = capture.log_index
            proof = {"index": index, "tree_size": checkpoint.size,
                     "warc": f"archive/{capture.warc_name}",
                     "hashes": [b64encode(h) for h in inclusion.proof]}
            files.append((f"{PROVENANCE_DIR}/entry-{index}.json", inclusion.entry))
            files.append((f"{PROVENANCE_DIR}/proof-{index}.json",
                          json.dumps(proof, indent=1).encode()))
    except (ProvenanceError, OSError) as exc:
        log.warning("WACZ export without log proofs: the log in %s does not verify: %s",
                    log_path, exc)
        return []
    if not files:
        return []
    files.append((f"{PROVENANCE_DIR}/checkpoint", note))
    files.append((f"{PROVENANCE_DIR}/verifier-key", (vkey + "\n").encode()))
    tokens = log_path / "timestamp" / str(checkpoint.size)
    for token in sorted(tokens.iterdir()) if tokens.is_dir() else []:
        # Plain names only: the ZIP path must pass confined_name, and dotfiles are not published.
        if _TOKEN_NAME.fullmatch(token.name) and token.is_file() and not token.is_symlink():
            files.append((f"{PROVENANCE_DIR}/timestamp-{checkpoint.size}-{token.name}",
                          token.read_bytes()))
    return files


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``target`` only when the block ends without an error: it is
    written beside it and renamed, so a failed export leaves nothing. SamizdatError (on entry)
    for a path that cannot be written."""
    target = Path(target)
    if target.is_dir():
        raise SamizdatError(f"{target} is a directory; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise SamizdatError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, SamizdatError):
            raise SamizdatError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise


def _send(selection: WaczSelection):
    """Build ``selection`` into an anonymous temporary file and send it as a download."""
    # Anonymous: the file vanishes when the response closes it, even if the client goes away.
    spool = Path(runtime().settings.data_dir)
    spool.mkdir(parents=True, exist_ok=True)
    fh = tempfile.TemporaryFile(dir=spool)
    try:
        signer = wacz_signer_for(runtime().settings)
        summary = write_wacz(runtime().stores["local"], selection, fh, signer=signer,
                             log_path=runtime().settings.log_path)
    except BaseException as exc:
        fh.close()
        if not isinstance(exc, SamizdatError):
            raise
        # Readers get the state, not the spool's paths; the log keeps the detail.
        log.exception("WACZ export %s failed", selection.filename)
        abort(503, "this archive cannot be exported right now; please try again later")
    fh.seek(0)
    response = send_file(
        fh, mimetype="application/wacz", as_attachment=True, download_name=selection.filename,
        max_age=0,
    )
    # Werkzeug sizes files it opens itself, not file objects: a phone shows the download's progress.
    response.content_length = summary.bytes
    # Each export is dated when it is built: not something for shared caches to keep.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/archive/wacz-key.json")
def wacz_key():
    """The public key that signs this archive's anonymous-mode WACZ exports (all of them unless
    a domain certificate is configured), for checking a WACZ's ``publicKey`` against it."""
    try:
        signer = load_wacz_signer(runtime().settings.wacz_signing_key_path)
    except SamizdatError:
        log.exception("the WACZ signing key cannot be read")
        abort(503, "the archive's WACZ key cannot be read right now; please try again later")
    response = jsonify(signer.public_document())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/archive/<int:source_id>/export.wacz")
def export_source(source_id: int):
    """Download every stored capture of a source as a WACZ."""
    try:
        selection = source_selection(db_session(), source_id)
    except NothingToExport as exc:
        abort(404, str(exc))
    return _send(selection)


@bp.get("/archive/collections/<name>/export.wacz")
def export_collection(name: str):
    """Download every stored capture of a collection as a WACZ."""
    try:
        selection = collection_selection(db_session(), name)
    except NothingToExport as exc:
        abort(404, str(exc))
    return _send(selection)
