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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provenance.entries import CaptureEntry, CaptureFacts, EntryError, PartRef, capture_entry
from provenance.errors import ProvenanceError
from provenance.log import LogClient
from provenance.merkle import TILE_WIDTH
from provenance.note import Ed25519Verifier
from provenance.tiles import TileReader
from provenance.verify_pack import verify_pack

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


def run_pack(pack: str, pack_key: str | None, log: str | None, key: str, origin: str | None = None,
             echo: Callable[[str], None] = print) -> int:
    """Check a widget pack index or shard (provenance/verify_pack.py) against the log signed by
    ``key`` (and, with ``log``, the log itself), one line per check; return the exit status."""
    try:
        verifier = Ed25519Verifier.from_vkey(key)
    except ProvenanceError as exc:
        echo(Check(False, "log key", str(exc)).line())
        return 1
    client = LogClient(log, origin or verifier.name, verifier) if log else None
    failed = False
    for ok, what, detail in verify_pack(pack, pack_key, verifier, client):
        echo(Check(ok, what, detail).line())
        failed = failed or not ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m provenance.verify FOLDER --log LOCATION --key VKEY``: the standalone verifier."""
    parser = argparse.ArgumentParser(prog="python -m provenance.verify",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="a downloaded capture folder (its files and manifest.json)")
    parser.add_argument("--log", help="the log: a directory or an http(s) prefix")
    parser.add_argument("--key", help="the log's verifier key, <name>+<id>+<key>")
    parser.add_argument("--origin", help="the log's origin line (default: the key's name)")
    parser.add_argument("--pack", help="a widget pack index.json or shard (URL or file): its signature, "
                                       "and every fragment's approval in the log")
    parser.add_argument("--pack-key", help="the pack key that signs indexes (the x of packs/key.json)")
    args = parser.parse_args(argv)
    if args.pack:
        if not args.key:
            parser.error("--pack needs --key (the log's verifier key)")
        return run_pack(args.pack, args.pack_key, args.log, args.key, args.origin)
    if not args.folder or not args.log or not args.key:
        parser.error("give a FOLDER with --log and --key, or --pack")
    return run(args.folder, args.log, args.key, args.origin)


if __name__ == "__main__":
    sys.exit(main())
