"""The verifier: prove that a downloaded capture folder is what Samizdat logged, without our server.

Given the folder (the files and ``manifest.json`` as the reader's "Verify and take away" offers
them), a log origin (a directory or an http(s) prefix) and the log's public key, it recomputes
every part's sha256, rebuilds the capture's log entry from the manifest, finds it in the log's
entry bundles and proves its inclusion under the signed checkpoint; given TSA roots, it checks the
RFC 3161 tokens published beside that checkpoint. One line per check; any failure makes the exit
status 1. Runs as ``flask verify`` and as ``python -m provenance.verify``.
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

from cryptography import x509

from provenance.entries import CaptureEntry, CaptureFacts, EntryError, PartRef, capture_entry
from provenance.errors import ProvenanceError, TimestampError
from provenance.log import LogClient
from provenance.merkle import TILE_WIDTH
from provenance.note import Checkpoint, Ed25519Verifier
from provenance.tiles import MAX_TIMESTAMPS, TileReader, timestamp_path
from provenance.timestamp import MAX_TOKEN_BYTES, describe_token, load_roots, verify_timestamp

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


def verify_capture_folder(folder: str | Path, client: LogClient,
                          tsa_roots: Sequence[x509.Certificate] | None = None) -> Iterator[Check]:
    """Every check of a downloaded capture folder against a log, in order, as it is made; with
    ``tsa_roots``, the checkpoint's time-stamps too."""
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
    yield from verify_entry(entry, client, tsa_roots)


def verify_entry(entry: CaptureEntry, client: LogClient,
                 tsa_roots: Sequence[x509.Certificate] | None = None) -> Iterator[Check]:
    """Check the log's checkpoint, find ``entry`` in it and prove its inclusion; with
    ``tsa_roots``, check the checkpoint's time-stamps."""
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
    else:
        yield Check(True, f"inclusion of entry {index}",
                    f"under the checkpoint of size {checkpoint.size}")
    if tsa_roots is not None:
        yield from verify_timestamps(client, checkpoint, tsa_roots)


def verify_timestamps(client: LogClient, checkpoint: Checkpoint,
                      roots: Sequence[x509.Certificate]) -> Iterator[Check]:
    """Check ``timestamp/<size>/0.tsr`` … (up to the first missing) over the checkpoint's body
    text; a final failure when none of them is valid."""
    body = checkpoint.text().encode()
    size = checkpoint.size
    valid = 0
    for k in range(MAX_TIMESTAMPS):
        path = timestamp_path(size, k)
        try:
            # At most MAX_TOKEN_BYTES + 1 bytes are read: a larger file is refused, not held.
            token = client.fetcher.fetch(path, MAX_TOKEN_BYTES)
        except FileNotFoundError:
            break
        except (ProvenanceError, OSError) as exc:
            yield Check(False, path, str(exc))
            continue
        try:
            when = verify_timestamp(token, body, roots)
        except TimestampError as exc:
            yield Check(False, path, str(exc))
            continue
        valid += 1
        yield Check(True, f"timestamp: {describe_token(token)} says the checkpoint of size {size} "
                    f"existed by {when:%Y-%m-%d %H:%M:%S} UTC")
    if not valid:
        yield Check(False, "timestamps", f"no valid time-stamp token for the checkpoint of size {size}")


def run(folder: str | Path, log: str, key: str, origin: str | None = None,
        echo: Callable[[str], None] = print, tsa_roots: Sequence[str | Path] = ()) -> int:
    """Check ``folder`` against the log at ``log`` signed by verifier key ``key`` (and, given PEM
    files of TSA roots, the checkpoint's time-stamps), printing one line per check through
    ``echo``; return the exit status."""
    try:
        verifier = Ed25519Verifier.from_vkey(key)
    except ProvenanceError as exc:
        echo(Check(False, "log key", str(exc)).line())
        return 1
    roots: list[x509.Certificate] | None = None
    if tsa_roots:
        roots = []
        for path in tsa_roots:
            try:
                roots += load_roots(path)
            except TimestampError as exc:
                echo(Check(False, "TSA roots", str(exc)).line())
                return 1
    client = LogClient(log, origin or verifier.name, verifier)
    failed = False
    for check in verify_capture_folder(folder, client, roots):
        echo(check.line())
        failed = failed or not check.ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m provenance.verify FOLDER --log LOCATION --key VKEY [--tsa-root PEM]…``: the
    standalone verifier."""
    parser = argparse.ArgumentParser(prog="python -m provenance.verify",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a downloaded capture folder (its files and manifest.json)")
    parser.add_argument("--log", required=True, help="the log: a directory or an http(s) prefix")
    parser.add_argument("--key", required=True, help="the log's verifier key, <name>+<id>+<key>")
    parser.add_argument("--origin", help="the log's origin line (default: the key's name)")
    parser.add_argument("--tsa-root", action="append", default=[], metavar="PEM",
                        help="a PEM file of trusted TSA root certificates (repeatable): then check "
                             "the checkpoint's RFC 3161 time-stamps, and fail without a valid one")
    args = parser.parse_args(argv)
    return run(args.folder, args.log, args.key, args.origin, tsa_roots=args.tsa_root)


if __name__ == "__main__":
    sys.exit(main())
