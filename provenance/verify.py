"""The verifier: prove that a downloaded capture folder is what Samizdat logged, without our server.

Given the folder (the files and ``manifest.json`` as the reader's "Verify and take away" offers
them), a log origin (a directory or an http(s) prefix) and the log's public key, it recomputes
every part's sha256, rebuilds the capture's log entry from the manifest, finds it in the log's
entry bundles and proves its inclusion under the signed checkpoint. One line per check; any
failure makes the exit status 1. Runs as ``flask verify`` and as ``python -m provenance.verify``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provenance import merkle
from provenance.entries import CaptureEntry, CaptureFacts, EntryError, PartRef, capture_entry
from provenance.errors import ProvenanceError
from provenance.keys import (
    DEFAULT_MAX_SCAN,
    MAX_ENVELOPE_BYTES,
    checkpoint_refusals,
    log_entries,
    pack_refusals,
    read_history,
    role_key,
    wacz_refusals,
)
from provenance.log import LogClient, fetcher_for
from provenance.merkle import TILE_WIDTH
from provenance.note import MAX_NOTE_BYTES, Checkpoint, Ed25519Verifier, parse_note
from provenance.tiles import CHECKPOINT_PATH, TileReader

MANIFEST_NAME = "manifest.json"
# Far above any capture's manifest: its parts are bounded by the entry size.
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MANIFEST_FORMATS = (1, 2)


@dataclass(frozen=True)
class Check:
    """One check's outcome, printed as one line."""

    ok: bool
    what: str
    detail: str = ""

    def line(self) -> str:
        """``ok  <what>`` or ``FAIL <what>: <why>``."""
        if self.ok:
            return f"ok  {self.what}" + (f" ({self.detail})" if self.detail else "")
        return f"FAIL {self.what}: {self.detail}"


def read_manifest(folder: Path) -> tuple[CaptureFacts, str]:
    """The capture a folder's manifest describes and the manifest's sha256; EntryError if unusable.
    """
    path = folder / MANIFEST_NAME
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise EntryError(f"cannot read {MANIFEST_NAME}: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise EntryError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise EntryError(f"{MANIFEST_NAME} is not JSON") from None
    if not isinstance(body, dict) or body.get("samizdat_manifest") not in MANIFEST_FORMATS:
        raise EntryError(f"{MANIFEST_NAME} is not a Samizdat manifest of a known format")
    parts = body.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise EntryError(f"{MANIFEST_NAME} lists no parts")
    try:
        fetched_at = datetime.fromisoformat(body.get("fetched_at"))
    except (TypeError, ValueError):
        raise EntryError(f"{MANIFEST_NAME} has no valid fetched_at") from None
    refs = tuple(PartRef(p.get("name"), p.get("sha256"), p.get("cid")) for p in parts)
    facts = CaptureFacts(body.get("url"), fetched_at, refs)
    return facts, hashlib.sha256(data).hexdigest()


def file_sha256(folder: Path, name: str) -> str:
    """The sha256 of ``folder/name``, read in chunks; OSError if absent or outside the folder."""
    root = folder.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):  # a symbolic link leading out of the folder
        raise OSError(f"{name} lies outside the folder")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def find_entry(client: LogClient, size: int, entry: bytes) -> int | None:
    """The index of ``entry`` among the log's first ``size`` (each bundle checked against its tile).
    """
    reader = TileReader(client.fetcher, size)
    for bundle in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        for offset, candidate in enumerate(reader.bundle(bundle)):
            if candidate == entry:
                return bundle * TILE_WIDTH + offset
    return None


def verify_capture_folder(folder: str | Path, client: LogClient) -> Iterator[Check]:
    """Every check of a downloaded capture folder against a log, in order, as it is made."""
    folder = Path(folder)
    try:
        facts, manifest_sha = read_manifest(folder)
        entry = capture_entry(facts, manifest_sha)
    except EntryError as exc:
        yield Check(False, "manifest", str(exc))
        return
    yield Check(True, f"manifest of {entry.url}", f"sha256 {manifest_sha}")
    for part in entry.parts:
        try:
            actual = file_sha256(folder, part.name)
        except OSError as exc:
            yield Check(False, f"sha256 of {part.name}",
                        f"cannot read the file: {exc.strerror or exc}")
            continue
        if actual == part.sha256:
            yield Check(True, f"sha256 of {part.name}")
        else:
            yield Check(False, f"sha256 of {part.name}", f"the file's is {actual}, the manifest "
                        f"says {part.sha256}: the file was altered")
    yield from verify_entry(entry, client)


def verify_entry(entry: CaptureEntry, client: LogClient) -> Iterator[Check]:
    """Check the log's checkpoint, find ``entry`` in it and prove its inclusion."""
    try:
        checkpoint = client.checkpoint()
    except ProvenanceError as exc:
        yield Check(False, "checkpoint", str(exc))
        return
    yield Check(True, f"checkpoint of {checkpoint.origin}",
                f"size {checkpoint.size}, signature verified")
    data = entry.encode()
    try:
        index = find_entry(client, checkpoint.size, data)
        if index is None:
            raise ProvenanceError(f"the capture's entry is not among the log's {checkpoint.size} "
                                  "entries: not logged, or removed")
        client.prove_inclusion(checkpoint, index)
    except ProvenanceError as exc:
        yield Check(False, "inclusion", str(exc))
        return
    yield Check(True, f"inclusion of entry {index}",
                f"under the checkpoint of size {checkpoint.size}")


def verify_key_use(log: str, key: str, origin: str | None = None, waczs: Sequence[str] = (),
                   packs: Sequence[str] = (), max_entries: int = DEFAULT_MAX_SCAN
                   ) -> Iterator[Check]:
    """The ``--keys`` checks: read the log's key entries (rotations, revocations), follow the log
    key's rotations from ``key``, and refuse a checkpoint signed only by a revoked log key and any
    WACZ or pack signed by a key after its revocation."""
    try:
        pinned = role_key("log", key)
    except ProvenanceError as exc:
        yield Check(False, "log key", str(exc))
        return
    origin = origin or pinned.text.split("+", 1)[0]
    fetcher = fetcher_for(log)
    try:
        data = fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
        checkpoint = Checkpoint.parse(parse_note(data).text)
        if checkpoint.origin != origin:
            raise ProvenanceError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
        reader = TileReader(fetcher, checkpoint.size)
        # Key entries authenticate themselves (each is signed by the keys it names); the root
        # check below ties them to the checkpoint all the same.
        history = read_history(log_entries(reader, max_entries), [pinned])
        if checkpoint.size and merkle.tree_hash(reader, checkpoint.size) != checkpoint.root_hash:
            raise ProvenanceError("the log's tiles do not match its checkpoint's root")
    except (ProvenanceError, FileNotFoundError) as exc:
        yield Check(False, "key entries", str(exc))
        return
    rotations = len(history.rotations)
    yield Check(True, f"key entries of {origin}", f"{checkpoint.size} entries read, {rotations} "
                f"rotation(s), {len(history.revoked)} revocation(s)")
    for index, reason in history.refused:
        yield Check(False, f"key entry {index}", reason)
    chain = history.log_keys(pinned)
    if len(chain) > 1:
        yield Check(True, "log key rotations followed",
                    " -> ".join(k.key_id for k in chain))
    refusals = checkpoint_refusals(data, history, chain)
    yield from (Check(False, "checkpoint", reason) for reason in refusals)
    if not refusals:
        yield Check(True, f"checkpoint of size {checkpoint.size}", "signed by a log key in force")
    for path in waczs:
        refusals = wacz_refusals(path, history)
        yield from (Check(False, f"WACZ {path}", reason) for reason in refusals)
        if not refusals:
            yield Check(True, f"WACZ {path}", "its signing key is not revoked at its signing time")
    for path in packs:
        try:
            with open(path, "rb") as f:
                envelope = f.read(MAX_ENVELOPE_BYTES + 1)
        except OSError as exc:
            yield Check(False, f"pack {path}", f"cannot read it: {exc.strerror or exc}")
            continue
        refusals = pack_refusals(envelope, history)
        yield from (Check(False, f"pack {path}", reason) for reason in refusals)
        if not refusals:
            yield Check(True, f"pack {path}", "no signature by a key revoked before it was issued")


def run_key_checks(log: str, key: str, origin: str | None = None, waczs: Sequence[str] = (),
                   packs: Sequence[str] = (), echo: Callable[[str], None] = print,
                   max_entries: int = DEFAULT_MAX_SCAN) -> int:
    """Print :func:`verify_key_use`'s checks one line each; return the exit status."""
    failed = False
    for check in verify_key_use(log, key, origin, waczs, packs, max_entries):
        echo(check.line())
        failed = failed or not check.ok
    return 1 if failed else 0


def run(folder: str | Path, log: str, key: str, origin: str | None = None,
        echo: Callable[[str], None] = print) -> int:
    """Check ``folder`` against the log at ``log`` signed by verifier key ``key``, printing one line
    per check through ``echo``; return the exit status."""
    try:
        verifier = Ed25519Verifier.from_vkey(key)
    except ProvenanceError as exc:
        echo(Check(False, "log key", str(exc)).line())
        return 1
    client = LogClient(log, origin or verifier.name, verifier)
    failed = False
    for check in verify_capture_folder(folder, client):
        echo(check.line())
        failed = failed or not check.ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m provenance.verify FOLDER --log LOCATION --key VKEY``: the standalone verifier."""
    parser = argparse.ArgumentParser(prog="python -m provenance.verify",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?",
                        help="a downloaded capture folder (its files and manifest.json)")
    parser.add_argument("--log", required=True, help="the log: a directory or an http(s) prefix")
    parser.add_argument("--key", required=True, help="the log's verifier key, <name>+<id>+<key>")
    parser.add_argument("--origin", help="the log's origin line (default: the key's name)")
    parser.add_argument("--keys", action="store_true",
                        help="check key rotations and revocations in the log (implied by --wacz "
                        "and --pack)")
    parser.add_argument("--wacz", action="append", default=[], metavar="FILE",
                        help="a WACZ to refuse if its key signed it after its revocation")
    parser.add_argument("--pack", action="append", default=[], metavar="FILE",
                        help="a pack index or catalogue to refuse likewise")
    parser.add_argument("--keys-max-entries", type=int, default=DEFAULT_MAX_SCAN,
                        help="read at most this many log entries looking for key entries")
    args = parser.parse_args(argv)
    keys = args.keys or args.wacz or args.pack
    if args.folder is None and not keys:
        parser.error("give a capture FOLDER, or --keys, --wacz or --pack")
    status = 0
    if args.folder is not None:
        status = run(args.folder, args.log, args.key, args.origin)
    if keys:
        status |= run_key_checks(args.log, args.key, args.origin, args.wacz, args.pack,
                                 max_entries=args.keys_max_entries)
    return status


if __name__ == "__main__":
    sys.exit(main())
