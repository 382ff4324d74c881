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
from datetime import datetime, timezone
from pathlib import Path

from provenance.cosignature import CosignatureVerifier, WitnessPolicy
from provenance.entries import CaptureEntry, CaptureFacts, EntryError, PartRef, capture_entry
from provenance.errors import PolicyError, ProvenanceError
from provenance.log import LogClient
from provenance.merkle import TILE_WIDTH
from provenance.note import Checkpoint, Ed25519Verifier
from provenance.tiles import TileReader

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
    fatal: bool = True  # False: a shortfall worth a line that fails nothing by itself

    def line(self) -> str:
        """``ok  <what>``, ``FAIL <what>: <why>`` or, for a shortfall that is not fatal,
        ``--  <what>``."""
        if self.ok:
            return f"ok  {self.what}" + (f" ({self.detail})" if self.detail else "")
        if not self.fatal:
            return f"--  {self.what}" + (f" ({self.detail})" if self.detail else "")
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


def verify_checkpoint(client: LogClient) -> Iterator[Check | Checkpoint]:
    """Check the log's checkpoint and, under a witness policy, each witness's cosignature and
    the quorum; yields the checkpoint itself last when its signature verified."""
    try:
        if client.policy is None:
            checkpoint = client.checkpoint()
        else:
            cosigned = client.cosigned()
            checkpoint = cosigned.checkpoint
    except ProvenanceError as exc:
        yield Check(False, "checkpoint", str(exc))
        return
    yield Check(True, f"checkpoint of {checkpoint.origin}",
                f"size {checkpoint.size}, signature verified")
    if client.policy is not None:
        for witness in client.policy.witnesses:
            stamp = cosigned.cosigners.get(witness.name)
            if stamp is None:
                yield Check(False, f"no valid cosignature from {witness.name}", fatal=False)
            else:
                when = datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                yield Check(True, f"cosigned by {witness.name} at {when}")
        try:
            client.policy.check(cosigned)
        except PolicyError as exc:
            yield Check(False, "witness policy", str(exc))
        else:
            yield Check(True, "witness policy", f"{len(cosigned.cosigners)} of "
                        f"{len(client.policy.witnesses)} witnesses cosigned, "
                        f"{client.policy.threshold} needed")
    yield checkpoint


def verify_entry(entry: CaptureEntry, client: LogClient) -> Iterator[Check]:
    """Check the log's checkpoint (and witness policy), find ``entry`` and prove its inclusion."""
    checkpoint = None
    for item in verify_checkpoint(client):
        if isinstance(item, Check):
            yield item
        else:
            checkpoint = item
    if checkpoint is None:
        return
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


def witness_policy(witnesses: Sequence[str], quorum: int | None) -> WitnessPolicy | None:
    """The policy ``--witness`` and ``--quorum`` ask for (None without witnesses); the quorum is
    1 when not given. ProvenanceError naming a bad key or an impossible quorum."""
    if not witnesses:
        if quorum:
            raise PolicyError("--quorum needs the witnesses it counts: give --witness VKEY")
        return None
    verifiers = []
    for vkey in witnesses:
        try:
            verifiers.append(CosignatureVerifier.from_vkey(vkey))
        except ProvenanceError as exc:
            raise PolicyError(f"witness key {vkey[:80]!r}: {exc}") from None
    return WitnessPolicy(tuple(verifiers), 1 if quorum is None else quorum)


def run(folder: str | Path, log: str, key: str, origin: str | None = None,
        echo: Callable[[str], None] = print, witnesses: Sequence[str] = (),
        quorum: int | None = None) -> int:
    """Check ``folder`` against the log at ``log`` signed by verifier key ``key`` (and, given
    witness keys, the checkpoint's cosignatures against ``quorum``), printing one line per check
    through ``echo``; return the exit status."""
    try:
        verifier = Ed25519Verifier.from_vkey(key)
    except ProvenanceError as exc:
        echo(Check(False, "log key", str(exc)).line())
        return 1
    try:
        policy = witness_policy(witnesses, quorum)
    except ProvenanceError as exc:
        echo(Check(False, "witness policy", str(exc)).line())
        return 1
    client = LogClient(log, origin or verifier.name, verifier, policy=policy)
    failed = False
    for check in verify_capture_folder(folder, client):
        echo(check.line())
        failed = failed or (not check.ok and check.fatal)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m provenance.verify FOLDER --log LOCATION --key VKEY``: the standalone verifier."""
    parser = argparse.ArgumentParser(prog="python -m provenance.verify",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a downloaded capture folder (its files and manifest.json)")
    parser.add_argument("--log", required=True, help="the log: a directory or an http(s) prefix")
    parser.add_argument("--key", required=True, help="the log's verifier key, <name>+<id>+<key>")
    parser.add_argument("--origin", help="the log's origin line (default: the key's name)")
    parser.add_argument("--witness", action="append", default=[], metavar="VKEY",
                        help="a witness's cosignature key (repeatable): the checkpoint must carry "
                             "--quorum of their cosignatures")
    parser.add_argument("--quorum", type=int, metavar="K",
                        help="how many of the --witness keys must have cosigned (default 1)")
    args = parser.parse_args(argv)
    return run(args.folder, args.log, args.key, args.origin, witnesses=args.witness,
               quorum=args.quorum)


if __name__ == "__main__":
    sys.exit(main())
