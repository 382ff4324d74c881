"""The verifier: prove that a download is what Samizdat logged, without our server.

Inputs, told apart by the argument: a capture folder (its files and ``manifest.json`` as the
reader's "Verify and take away" offers them), a WARC (``.warc``, ``.warc.gz``), a WACZ, or
``--fragment ID --archive URL``. Given a log (a directory or an http(s) prefix) and the log's
public key, it recomputes hashes, finds the entry that vouches for the download and proves its
inclusion under the signed checkpoint; a WACZ carries its own proofs and is checked offline. The
last checkpoint seen of each origin is remembered (``--state``), and every later one must be
consistent with it. One line per check; any failure makes the exit status 1. Runs as
``flask verify`` and as ``python -m provenance.verify``.
"""

from __future__ import annotations

import argparse
import dataclasses
import base64
import binascii
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from provenance import merkle
from provenance.cosignature import CosignatureVerifier, WitnessPolicy
from provenance.entries import (
    CaptureEntry,
    CaptureFacts,
    DecisionEntry,
    EntryError,
    PartRef,
    capture_entry,
    parse_entry,
    text_sha256,
)
from provenance.errors import PolicyError, ProofError, ProvenanceError, TimestampError
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
from provenance.note import (
    MAX_NOTE_BYTES,
    Checkpoint,
    Ed25519Verifier,
    Verifier,
    open_checkpoint,
    parse_note,
)
from provenance.tiles import (
    CHECKPOINT_PATH,
    MAX_ENTRY_SIZE,
    MAX_TIMESTAMPS,
    TileReader,
    timestamp_path,
)
from provenance.timestamp import MAX_TOKEN_BYTES, describe_token, load_roots, verify_timestamp
from provenance.verify_pack import verify_pack
from provenance.wacz_signature import (
    CERT_WINDOW,
    STAMP_WINDOW,
    chain_breaks,
    fingerprint,
    is_domain_mode,
    parse_chain,
    parse_created,
    subject_name,
    verify_hash_signature,
    verify_signed_data,
)

# What reading a log or a download may raise besides our own refusals: the file system's and the
# network's errors. Each becomes a failed check with its reason, never a traceback.
READ_ERRORS = (ProvenanceError, OSError, http.client.HTTPException)
# ...and what reading a ZIP member may raise: bad CRC or deflate data, encryption, truncation.
ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
              RuntimeError, zlib.error)

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


def verify_capture_folder(folder: str | Path, client: LogClient,
                          memory: CheckpointMemory | None = None, *,
                          tsa_roots: Roots = None) -> Iterator[Check]:
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
    yield from verify_entry(entry, client, memory, tsa_roots=tsa_roots)


def verify_entry(entry: CaptureEntry, client: LogClient,
                 memory: CheckpointMemory | None = None, *,
                 tsa_roots: Roots = None) -> Iterator[Check]:
    """Check the log's checkpoint, find ``entry`` in it and prove its inclusion."""
    checkpoint = yield from check_log(client, memory, tsa_roots=tsa_roots)
    if checkpoint is None:
        return
    data = entry.encode()
    try:
        index = find_entry(client, checkpoint.size, data)
        if index is None:
            raise ProvenanceError(f"the capture's entry is not among the log's {checkpoint.size} "
                                  "entries: not logged, or removed")
        client.prove_inclusion(checkpoint, index)
    except READ_ERRORS as exc:
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
    for (role, key_id_), revoked in sorted(history.revoked.items()):
        if role == "log":  # what a witness's operator needs: flask witness revoke-log-key
            yield Check(True, f"log key {key_id_} revoked",
                        f"at {revoked.time} by entry {revoked.index}: witnesses refuse it alone "
                        f"with --from-size {revoked.index + 1}")
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
            yield Check(True, f"WACZ {path}", "not signed by a WACZ key revoked before its signing time")
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


# --- the log's checkpoint, and the one seen before ---------------------------------------------

# The TSAs' trusted roots when the checkpoint's time-stamps are to be checked; None when not.
Roots = Sequence[x509.Certificate] | None


def check_log(client: LogClient, memory: CheckpointMemory | None, *, tsa_roots: Roots = None
              ) -> Generator[Check, None, Checkpoint | None]:
    """Fetch and verify the log's checkpoint (and, under a witness policy, each witness's
    cosignature and the quorum), prove it extends the one seen before and, given ``tsa_roots``,
    check its time-stamps; return it, or None when it cannot be trusted (the reasons yielded as
    failed checks)."""
    try:
        if client.policy is None:
            checkpoint = client.checkpoint()
        else:
            cosigned = client.cosigned()
            checkpoint = cosigned.checkpoint
    except READ_ERRORS as exc:
        yield Check(False, "checkpoint", str(exc))
        return None
    yield Check(True, f"checkpoint of {checkpoint.origin}",
                f"size {checkpoint.size}, signature verified")
    if client.policy is not None:
        for witness in client.policy.witnesses:
            stamp = cosigned.cosigners.get(witness.name)
            if stamp is None:
                yield Check(False, f"no valid cosignature from {witness.name}", fatal=False)
            else:
                when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                yield Check(True, f"cosigned by {witness.name} at {when}")
        try:
            client.policy.check(cosigned)
        except PolicyError as exc:
            yield Check(False, "witness policy", str(exc))
            return None
        yield Check(True, "witness policy", f"{len(cosigned.cosigners)} of "
                    f"{len(client.policy.witnesses)} witnesses cosigned, "
                    f"{client.policy.threshold} needed")
    if memory is not None and not (yield from memory.check(client, checkpoint)):
        return None
    if tsa_roots is not None:
        yield from verify_timestamps(client, checkpoint, tsa_roots)
    return checkpoint


def verify_timestamps(client: LogClient, checkpoint: Checkpoint,
                      roots: Sequence[x509.Certificate]) -> Iterator[Check]:
    """Check ``timestamp/<size>/0.tsr`` … (up to the first missing) over the checkpoint's tree
    head (origin, size, root); a final failure when none of them is valid."""
    body = checkpoint.tree_head().encode()
    size = checkpoint.size
    valid = 0
    for k in range(MAX_TIMESTAMPS):
        path = timestamp_path(size, k)
        try:
            # At most MAX_TOKEN_BYTES + 1 bytes are read: a larger file is refused, not held.
            token = client.fetcher.fetch(path, MAX_TOKEN_BYTES)
        except FileNotFoundError:
            break
        except READ_ERRORS as exc:
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


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/samizdat-verify`` (``~/.local/state/samizdat-verify`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    # The XDG spec: a relative value is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "samizdat-verify"


# A remembered checkpoint is a few lines; anything larger is not one of ours.
MAX_STATE_BYTES = 64 * 1024


class CheckpointMemory:
    """The last checkpoint seen of each origin, one small JSON file per origin in a directory."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def _path(self, origin: str) -> Path:
        # Hashed: an origin is free text ("example.org/log"), a file name must not be.
        return self.directory / (hashlib.sha256(origin.encode()).hexdigest()[:32] + ".json")

    def recall(self, origin: str) -> tuple[Checkpoint, str] | None:
        """The checkpoint seen last of ``origin`` and when; None if none; ProvenanceError if the
        file is unreadable."""
        path = self._path(origin)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ProvenanceError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            if len(data) > MAX_STATE_BYTES:
                raise ValueError("too large")
            body = json.loads(data)
            checkpoint = Checkpoint.parse(body["checkpoint"])
            seen_at = str(body["seen_at"])
        except (ValueError, KeyError, TypeError, ProvenanceError):
            raise ProvenanceError(f"{path} is not a remembered checkpoint; remove it to start "
                                  "afresh") from None
        if checkpoint.origin != origin:
            raise ProvenanceError(f"{path} holds a checkpoint of another origin")
        return checkpoint, seen_at

    def remember(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` as the last seen of its origin, atomically (never half-written)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {"origin": checkpoint.origin, "checkpoint": checkpoint.text(),
                "seen_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
        target = self._path(checkpoint.origin)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(body, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def check(self, client: LogClient, checkpoint: Checkpoint) -> Generator[Check, None, bool]:
        """Prove ``checkpoint`` extends the one seen before, then remember it; False (and the old
        one kept) on a fork, a rollback or a proof that cannot be had."""
        try:
            seen = self.recall(checkpoint.origin)
        except READ_ERRORS as exc:
            yield Check(False, "checkpoint seen before", str(exc))
            return False
        if seen is None:
            yield from self._store(checkpoint, f"first checkpoint seen of {checkpoint.origin}")
            return True
        old, seen_at = seen
        try:
            client.prove_consistency(old, checkpoint)
        except ProofError as exc:
            yield Check(False, "consistency", f"the log was rewritten: {exc} (the checkpoint of "
                        f"size {old.size} seen on {seen_at} is kept)")
            return False
        except READ_ERRORS as exc:
            yield Check(False, "consistency", f"cannot prove the log extends the checkpoint of "
                        f"size {old.size} seen on {seen_at}: {exc}")
            return False
        yield Check(True, f"consistent with the checkpoint of size {old.size} seen on {seen_at}")
        if checkpoint.size > old.size:
            yield from self._store(checkpoint, f"checkpoint of size {checkpoint.size} remembered")
        return True

    def _store(self, checkpoint: Checkpoint, what: str) -> Iterator[Check]:
        try:
            self.remember(checkpoint)
        except OSError as exc:
            yield Check(False, "remembering the checkpoint", f"cannot write {self.directory}: "
                        f"{exc.strerror or exc}")
            return
        yield Check(True, what, f"in {self.directory}")


# --- a WARC downloaded from a reader page -------------------------------------------------------

# How far back a WARC or a fragment is looked for without --entry: 256 bundles, newest first.
MAX_SCAN_ENTRIES = 256 * TILE_WIDTH


def scan_log(client: LogClient, size: int, wanted: Callable[[bytes], bool],
             limit: int = MAX_SCAN_ENTRIES) -> tuple[int | None, int]:
    """The newest index among the log's last ``limit`` entries whose bytes ``wanted`` accepts
    (None if none), and how many entries were scanned."""
    reader = TileReader(client.fetcher, size)
    scanned = 0
    for bundle in reversed(range((size + TILE_WIDTH - 1) // TILE_WIDTH)):
        entries = reader.bundle(bundle)
        for offset in reversed(range(len(entries))):
            if scanned == limit:
                return None, scanned
            scanned += 1
            if wanted(entries[offset]):
                return bundle * TILE_WIDTH + offset, scanned
    return None, scanned


def _capture_holding(data: bytes, sha256: str) -> CaptureEntry | None:
    """The capture entry ``data`` encodes if one of its parts has ``sha256``."""
    if sha256.encode() not in data:  # most entries: no need to parse them
        return None
    try:
        entry = parse_entry(data)
    except EntryError:
        return None
    if isinstance(entry, CaptureEntry) and any(p.sha256 == sha256 for p in entry.parts):
        return entry
    return None


def stream_sha256(path: Path) -> str:
    """The sha256 of a file of any size, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_warc(path: str | Path, client: LogClient, memory: CheckpointMemory | None = None,
                index: int | None = None, *, tsa_roots: Roots = None) -> Iterator[Check]:
    """A WARC is vouched for when its sha256 is a part of a capture entry proven in the log."""
    path = Path(path)
    try:
        sha256 = stream_sha256(path)
    except OSError as exc:
        yield Check(False, f"sha256 of {path.name}", f"cannot read the file: {exc.strerror or exc}")
        return
    yield Check(True, f"sha256 of {path.name}", sha256)
    checkpoint = yield from check_log(client, memory, tsa_roots=tsa_roots)
    if checkpoint is None:
        return
    try:
        if index is None:
            index, scanned = scan_log(client, checkpoint.size,
                                      lambda data: _capture_holding(data, sha256) is not None)
            if index is None:
                more = ("" if scanned == checkpoint.size else
                        "; give the index the reader page prints with --entry N")
                raise ProvenanceError(f"no capture entry holds this WARC among the {scanned} "
                                      f"entries scanned of the log's {checkpoint.size}{more}")
            where = f"found after scanning {scanned} entries, newest first"
        else:
            where = "given with --entry"
        inclusion = client.prove_inclusion(checkpoint, index)
    except READ_ERRORS as exc:
        yield Check(False, "inclusion", str(exc))
        return
    entry = _capture_holding(inclusion.entry, sha256)
    if entry is None:
        yield Check(False, f"entry {index}", "it is not a capture entry holding this WARC's sha256")
        return
    part = next(p.name for p in entry.parts if p.sha256 == sha256)
    yield Check(True, f"the WARC is {part} of the capture of {entry.url} at {entry.time}",
                f"entry {index}, {where}")
    yield Check(True, f"inclusion of entry {index}",
                f"under the checkpoint of size {checkpoint.size}")


# --- a fragment, by its id, from an archive's public JSON ---------------------------------------

FRAGMENT_ID = re.compile(r"[0-9a-f]{32}")
MAX_FRAGMENT_JSON_BYTES = 1024 * 1024  # a fragment's text is a passage, never a megabyte


def fetch_bounded(url: str, max_bytes: int, timeout: float = 10.0) -> bytes:
    """The body at an http(s) ``url``, refused (ProvenanceError) past ``max_bytes`` without
    reading it whole."""
    if not url.startswith(("http://", "https://")):
        raise ProvenanceError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise ProvenanceError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise ProvenanceError(f"{url}: {exc}") from None
    if len(data) > max_bytes:
        raise ProvenanceError(f"{url} is larger than {max_bytes} bytes")
    return data


def fragment_json_url(archive: str, fragment_id: str) -> str:
    """Where an archive publishes an approved fragment's JSON (embed/public.py)."""
    return f"{archive.rstrip('/')}/fragments/{fragment_id}.json"


def _decision_on(data: bytes, fragment_id: str) -> DecisionEntry | None:
    if fragment_id.encode() not in data:
        return None
    try:
        entry = parse_entry(data)
    except EntryError:
        return None
    return entry if isinstance(entry, DecisionEntry) and entry.fragment == fragment_id else None


def verify_fragment(fragment_id: str, archive: str, client: LogClient,
                    memory: CheckpointMemory | None = None, *,
                    tsa_roots: Roots = None) -> Iterator[Check]:
    """A fragment is vouched for when the log's latest decision on it approved (or edited it to)
    exactly the text the archive serves, and that decision is proven in the log."""
    if not FRAGMENT_ID.fullmatch(fragment_id):
        yield Check(False, "fragment id", "a fragment id is 32 lowercase hex digits")
        return
    url = fragment_json_url(archive, fragment_id)
    try:
        data = fetch_bounded(url, MAX_FRAGMENT_JSON_BYTES)
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):
            raise ProvenanceError(f"{url} is not JSON") from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or (body.get("id") not in (None, fragment_id)):
            raise ProvenanceError(f"{url} is not the JSON of fragment {fragment_id}")
        served = text_sha256(text)
    except UnicodeEncodeError:  # a lone surrogate, which no text the archive keeps can hold
        yield Check(False, f"fragment {fragment_id}", f"{url} holds text that is not Unicode")
        return
    except READ_ERRORS as exc:
        yield Check(False, f"fragment {fragment_id}", str(exc))
        return
    yield Check(True, f"fragment {fragment_id} as {archive} serves it", f"text sha256 {served}")
    checkpoint = yield from check_log(client, memory, tsa_roots=tsa_roots)
    if checkpoint is None:
        return
    try:
        index, scanned = scan_log(client, checkpoint.size,
                                  lambda data: _decision_on(data, fragment_id) is not None)
        if index is None:
            why = ("not (yet) logged" if scanned == checkpoint.size else
                   "older entries are not scanned")
            raise ProvenanceError(f"no decision on this fragment among the {scanned} entries "
                                  f"scanned of the log's {checkpoint.size}: {why}")
        inclusion = client.prove_inclusion(checkpoint, index)
    except READ_ERRORS as exc:
        yield Check(False, "decision", str(exc))
        return
    decision = _decision_on(inclusion.entry, fragment_id)
    if decision is None:
        yield Check(False, f"entry {index}", "it is not a decision on this fragment")
        return
    yield Check(True, f"latest decision on the fragment is entry {index}",
                f"{decision.decision} at {decision.time}, found after scanning {scanned} entries")
    if decision.decision not in ("approved", "edited"):
        yield Check(False, "decision", f"the log's latest decision on it is "
                    f"'{decision.decision}': the archive should not be serving it")
    elif decision.text_sha256 != served:
        yield Check(False, "text", f"the log vouches for text sha256 {decision.text_sha256}, "
                    f"the archive serves {served}: the text was changed outside the log")
    else:
        yield Check(True, f"the text is the one {decision.decision}")
    yield Check(True, f"inclusion of entry {index}",
                f"under the checkpoint of size {checkpoint.size}")


# --- a WACZ, its signature and the log proofs it carries ---------------------------------------

DATAPACKAGE, DIGEST = "datapackage.json", "datapackage-digest.json"
# datapackage.json lists every file (a few hundred bytes each): room for ~50,000 captures.
MAX_DATAPACKAGE_BYTES = 16 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024  # the digest, a proof, a key document
PROVENANCE_DIR = "provenance/"
WACZ_CHECKPOINT = PROVENANCE_DIR + "checkpoint"
_PROOF_PATH = re.compile(r"provenance/proof-(0|[1-9][0-9]{0,18})\.json")
_TOKEN_PATH = re.compile(r"provenance/timestamp-(0|[1-9][0-9]{0,18})-[^/]+\.tsr")


def read_member(zf: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """One member of a ZIP, refused (ProvenanceError) past ``max_bytes`` without reading it whole.
    """
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ProvenanceError(f"{name} is missing") from None
    if info.file_size > max_bytes:
        raise ProvenanceError(f"{name} is larger than {max_bytes} bytes")
    try:
        with zf.open(info) as member:
            data = member.read(max_bytes + 1)  # the header's size may lie
    except ZIP_ERRORS as exc:
        raise ProvenanceError(f"{name} cannot be read: {exc}") from None
    if len(data) > max_bytes:
        raise ProvenanceError(f"{name} is larger than {max_bytes} bytes")
    return data


def member_sha256(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    """The sha256 and size of one ZIP member, read in chunks."""
    digest, size = hashlib.sha256(), 0
    try:
        with zf.open(name) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except ZIP_ERRORS as exc:
        raise ProvenanceError(f"cannot be read: {exc}") from None
    return digest.hexdigest(), size


def load_wacz_key(location: str) -> str:
    """The WACZ public key (base64 SPKI) from a ``wacz-key.json`` file or URL."""
    if location.startswith(("http://", "https://")):
        data = fetch_bounded(location, MAX_JSON_BYTES)
    else:
        try:
            with open(location, "rb") as f:
                data = f.read(MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise ProvenanceError(f"cannot read {location}: {exc.strerror or exc}") from None
        if len(data) > MAX_JSON_BYTES:
            raise ProvenanceError(f"{location} is larger than {MAX_JSON_BYTES} bytes")
    try:
        key = json.loads(data).get("publicKey")
    except (ValueError, AttributeError, RecursionError):
        key = None
    if not isinstance(key, str) or not key:
        raise ProvenanceError(f"{location} is not a WACZ key document (no publicKey)")
    return key


def _json(data: bytes, what: str) -> dict:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise ProvenanceError(f"{what} is not JSON") from None
    if not isinstance(body, dict):
        raise ProvenanceError(f"{what} is not a JSON object")
    return body


@dataclass(frozen=True)
class WaczOptions:
    """How a WACZ's signature is judged: the pinned public key (anonymous mode), the trusted
    roots of domain certificates (domain mode), or leave to accept any key or root."""

    wacz_key: str | None = None
    allow_unpinned: bool = False
    domain_roots: tuple[x509.Certificate, ...] | None = None


def verify_wacz(path: str | Path, log_key: Verifier, origin: str, client: LogClient | None = None,
                memory: CheckpointMemory | None = None,
                options: WaczOptions = WaczOptions(), *,
                tsa_roots: Roots = None) -> Iterator[Check]:
    """Every file's hash against datapackage.json, the digest and its signature, then the log
    proofs the WACZ carries (offline); with ``client``, the embedded checkpoint against the live
    log."""
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        yield Check(False, "WACZ", f"not a readable ZIP file: {exc}")
        return
    with zf:
        hashes = yield from _check_package(zf)
        if hashes is None:
            return
        yield from _check_signature(zf, options, tsa_roots)
        embedded = yield from _check_proofs(zf, hashes, log_key, origin, tsa_roots)
        if embedded is not None and client is not None:
            live = yield from check_log(client, memory, tsa_roots=tsa_roots)
            if live is not None:
                try:
                    client.prove_consistency(embedded, live)
                except ProofError as exc:
                    yield Check(False, "the WACZ's checkpoint and the live log",
                                f"the log was rewritten: {exc}")
                except READ_ERRORS as exc:
                    yield Check(False, "the WACZ's checkpoint and the live log", str(exc))
                else:
                    yield Check(True, f"the WACZ's checkpoint of size {embedded.size} is "
                                f"consistent with the live log of size {live.size}")


def _check_package(zf: zipfile.ZipFile) -> Generator[Check, None, dict[str, str] | None]:
    """Each listed resource's sha256 and size; returns {path: sha256} of those that match."""
    try:
        package = _json(read_member(zf, DATAPACKAGE, MAX_DATAPACKAGE_BYTES), DATAPACKAGE)
        resources = package.get("resources")
        if not isinstance(resources, list) or not all(
                isinstance(r, dict) and isinstance(r.get("path"), str) for r in resources):
            raise ProvenanceError(f"{DATAPACKAGE} lists no resources")
    except READ_ERRORS as exc:
        yield Check(False, DATAPACKAGE, str(exc))
        return None
    yield Check(True, DATAPACKAGE, f"{len(resources)} resources listed")
    members = set(zf.namelist())
    matched: dict[str, str] = {}
    for resource in resources:
        name = resource["path"]
        if name not in members:
            yield Check(False, f"sha256 of {name}", "listed but not in the WACZ")
            continue
        try:
            actual, size = member_sha256(zf, name)
        except READ_ERRORS as exc:
            yield Check(False, f"sha256 of {name}", str(exc))
            continue
        listed = resource.get("hash")
        if listed != "sha256:" + actual:
            yield Check(False, f"sha256 of {name}", f"the file's is {actual}, {DATAPACKAGE} says "
                        f"{str(listed)[:80]}: the file was altered")
        elif resource.get("bytes") != size:
            yield Check(False, f"size of {name}", f"{size} bytes, {DATAPACKAGE} says "
                        f"{str(resource.get('bytes'))[:20]}")
        else:
            matched[name] = actual
            yield Check(True, f"sha256 of {name}")
    for name in sorted(members - {r["path"] for r in resources} - {DATAPACKAGE, DIGEST}):
        if not name.endswith("/"):
            yield Check(False, name, f"not listed in {DATAPACKAGE}: nothing vouches for it")
    return matched


def _check_signature(zf: zipfile.ZipFile, options: WaczOptions,
                     tsa_roots: Roots = None) -> Iterator[Check]:
    """The digest names datapackage.json's sha256, and a pinned key (or any, if allowed) signed it;
    in domain mode, a certificate chain to a trusted root signed it and a TSA time-stamped that.
    """
    try:
        package = read_member(zf, DATAPACKAGE, MAX_DATAPACKAGE_BYTES)
        digest = _json(read_member(zf, DIGEST, MAX_JSON_BYTES), DIGEST)
    except READ_ERRORS as exc:
        yield Check(False, DIGEST, str(exc))
        return
    expected = "sha256:" + hashlib.sha256(package).hexdigest()
    if digest.get("hash") != expected:
        yield Check(False, DIGEST, f"it names {str(digest.get('hash'))[:80]}, {DATAPACKAGE} has "
                    f"{expected}: the package was altered")
        return
    yield Check(True, DIGEST, f"matches {DATAPACKAGE}")
    signed = digest.get("signedData")
    if not isinstance(signed, dict):
        yield Check(False, "signature", "the WACZ is not signed")
        return
    if signed.get("hash") != expected:
        yield Check(False, "signature", f"it signs another hash than {DATAPACKAGE}'s")
        return
    if is_domain_mode(signed):
        yield from _check_domain_signature(signed, options, tsa_roots)
        return
    if not verify_signed_data(signed):
        yield Check(False, "signature", "it does not verify with the key it names")
        return
    claimed = signed.get("publicKey")
    key_id = hashlib.sha256(base64.b64decode(claimed)).hexdigest()[:16]
    if options.wacz_key is not None:
        if claimed != options.wacz_key:
            yield Check(False, "signature", f"made by key {key_id}, not by the pinned WACZ key")
        else:
            yield Check(True, "signature", f"by the pinned WACZ key {key_id}")
    elif options.allow_unpinned:
        yield Check(True, "signature", f"valid, by key {key_id}, unpinned (--allow-unpinned)")
    else:
        yield Check(False, "signature", f"signature made by an unpinned key ({key_id}): give the "
                    "archive's key with --wacz-key FILE|URL, or --allow-unpinned")


def _check_domain_signature(signed: dict, options: WaczOptions,
                            tsa_roots: Roots = None) -> Iterator[Check]:
    """A domain-mode signature, one line per check: the chain links, its root is trusted, the
    leaf's key signed the hash at a time the leaf was valid, and an RFC 3161 token by a TSA under
    ``tsa_roots`` covers the signature string soon after ``created``."""
    fields = ("signature", "domain", "domainCert", "timeSignature", "timestampCert")
    if not all(isinstance(signed.get(f), str) for f in fields):
        yield Check(False, "signature", "domain mode, but " + ", ".join(fields) + " are not all there")
        return
    try:
        chain = parse_chain(signed["domainCert"])
    except ValueError as exc:
        yield Check(False, "domain certificate chain", f"not a PEM chain: {exc}")
        return
    leaf, root = chain[0], chain[-1]
    broken = chain_breaks(chain)
    if broken:
        yield Check(False, "domain certificate chain", broken)
        return
    yield Check(True, "domain certificate chain", f"{len(chain)} certificate(s), each signed by the "
                f"next, root {root.subject.rfc4514_string()}")
    if options.domain_roots is not None:
        if any(fingerprint(root) == fingerprint(r) for r in options.domain_roots):
            yield Check(True, "domain root", f"trusted (sha-256 {fingerprint(root)})")
        else:
            yield Check(False, "domain root", f"sha-256 {fingerprint(root)} is not one of the "
                        "roots given with --domain-root")
    elif options.allow_unpinned:
        yield Check(True, "domain root", f"sha-256 {fingerprint(root)}, unpinned (--allow-unpinned)")
    else:
        yield Check(False, "domain root", f"sha-256 {fingerprint(root)}: give the roots you trust "
                    "with --domain-root PEM, or --allow-unpinned")
    domain = subject_name(leaf)
    if domain != signed["domain"]:
        yield Check(False, "signature", f"it claims the domain {str(signed['domain'])[:80]!r}, "
                    f"its certificate is for {domain!r}")
        return
    if not verify_hash_signature(signed, leaf):
        yield Check(False, "signature", f"it does not verify with the key of {domain}'s certificate")
        return
    yield Check(True, "signature", f"by the key of the certificate for {domain}")
    created = parse_created(signed.get("created"))
    if created is None:
        yield Check(False, "signature date", "created is missing or not an RFC 3339 time")
        return
    if not leaf.not_valid_before_utc <= created <= leaf.not_valid_after_utc:
        yield Check(False, "signature date", f"created {created:%Y-%m-%d %H:%M:%S} UTC is outside the "
                    f"certificate's validity ({leaf.not_valid_before_utc} to {leaf.not_valid_after_utc})")
        return
    # authsign's rule, kept here too: it bounds what a stolen domain key can sign (security.md).
    if created > leaf.not_valid_before_utc + CERT_WINDOW:
        yield Check(False, "signature date", f"created {created:%Y-%m-%d %H:%M:%S} UTC, over "
                    f"{CERT_WINDOW.days} days after the certificate's notBefore "
                    f"({leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC)")
        return
    yield Check(True, "signature date", f"created {created:%Y-%m-%d %H:%M:%S} UTC, within "
                f"{CERT_WINDOW.days} days of the certificate's notBefore")
    if tsa_roots is None:
        yield Check(False, "signature time-stamp", "not checked: give the TSAs' roots with --tsa-root",
                    fatal=False)
        return
    try:
        token = base64.b64decode(signed["timeSignature"], validate=True)
        intermediates = parse_chain(signed["timestampCert"])
        when = verify_timestamp(token, signed["signature"].encode("ascii"), tsa_roots,
                                intermediates=intermediates)
    except (binascii.Error, ValueError, TimestampError) as exc:
        yield Check(False, "signature time-stamp", str(exc))
        return
    # A token's genTime may be rounded down to the second, as ``created`` is.
    if not created - timedelta(seconds=1) <= when <= created + STAMP_WINDOW:
        yield Check(False, "signature time-stamp", f"made at {when:%Y-%m-%d %H:%M:%S} UTC, not within "
                    f"{STAMP_WINDOW} after created {created:%Y-%m-%d %H:%M:%S} UTC")
        return
    yield Check(True, f"signature time-stamp: {describe_token(token)} says the signature existed by "
                f"{when:%Y-%m-%d %H:%M:%S} UTC")


def _check_proofs(zf: zipfile.ZipFile, hashes: dict[str, str], log_key: Verifier, origin: str,
                  tsa_roots: Roots = None) -> Generator[Check, None, Checkpoint | None]:
    """The embedded checkpoint, then for each WARC the capture entry and inclusion proof that
    vouch for it, all offline; returns the checkpoint if it verifies."""
    warcs = sorted(n for n in hashes if n.startswith("archive/"))
    proofs = sorted((n for n in hashes if _PROOF_PATH.fullmatch(n)),
                    key=lambda n: int(_PROOF_PATH.fullmatch(n).group(1)))
    if not proofs:
        yield Check(False, "log proofs", "the WACZ carries none (exported before it was logged?)")
        return None
    if WACZ_CHECKPOINT not in hashes:  # a file that failed its hash is not read at all
        yield Check(False, WACZ_CHECKPOINT, f"missing, or not vouched for by {DATAPACKAGE}")
        return None
    try:
        checkpoint, _ = open_checkpoint(read_member(zf, WACZ_CHECKPOINT, MAX_NOTE_BYTES),
                                        origin, log_key)
    except READ_ERRORS as exc:
        yield Check(False, WACZ_CHECKPOINT, str(exc))
        return None
    yield Check(True, f"the WACZ's checkpoint of {checkpoint.origin}",
                f"size {checkpoint.size}, signature verified")
    proven: set[str] = set()
    for name in proofs:
        index = int(_PROOF_PATH.fullmatch(name).group(1))
        what = f"inclusion of entry {index}"
        try:
            proof = _json(read_member(zf, name, MAX_JSON_BYTES), name)
            warc = proof.get("warc")
            entry_name = f"{PROVENANCE_DIR}entry-{index}.json"
            if entry_name not in hashes:
                raise ProvenanceError(f"{entry_name} is missing or not vouched for")
            if warc not in warcs:
                raise ProvenanceError(f"{name} names no WARC of the WACZ")
            if proof.get("index") != index or proof.get("tree_size") != checkpoint.size:
                raise ProvenanceError(f"{name} is for another index or tree size than "
                                      f"entry {index} under the checkpoint of size "
                                      f"{checkpoint.size}")
            path = proof.get("hashes")
            if not isinstance(path, list) or not all(isinstance(h, str) for h in path):
                raise ProvenanceError(f"{name} has no list of base64 hashes")
            try:
                path = [base64.b64decode(h, validate=True) for h in path]
            except (binascii.Error, ValueError):
                raise ProvenanceError(f"{name} holds a hash that is not base64") from None
            data = read_member(zf, entry_name, MAX_ENTRY_SIZE)
            entry = parse_entry(data)
            if not isinstance(entry, CaptureEntry):
                raise ProvenanceError(f"{entry_name} is not a capture entry")
            if not any(p.sha256 == hashes[warc] for p in entry.parts):
                raise ProvenanceError(f"the capture entry does not hold {warc}'s sha256: the "
                                      "entry or the WARC was altered")
            merkle.verify_inclusion(merkle.leaf_hash(data), index, checkpoint.size, path,
                                    checkpoint.root_hash)
        except READ_ERRORS as exc:
            yield Check(False, what, str(exc))
            continue
        proven.add(warc)
        yield Check(True, what, f"{warc}, the capture of {entry.url} at {entry.time}, under the "
                    f"WACZ's checkpoint of size {checkpoint.size}")
    for warc in warcs:
        if warc not in proven:
            yield Check(False, warc, "no log proof for it: not in the log when exported")
    tokens = [n for n in hashes if (m := _TOKEN_PATH.fullmatch(n))
              and int(m.group(1)) == checkpoint.size]
    if tsa_roots is not None:
        valid = 0
        for name in sorted(tokens):
            try:
                token = read_member(zf, name, MAX_TOKEN_BYTES)
                when = verify_timestamp(token, checkpoint.tree_head().encode(), tsa_roots)
            except (*READ_ERRORS, TimestampError) as exc:
                yield Check(False, name, str(exc))
                continue
            valid += 1
            yield Check(True, f"timestamp: {describe_token(token)} says the WACZ's checkpoint of "
                        f"size {checkpoint.size} existed by {when:%Y-%m-%d %H:%M:%S} UTC")
        if not valid:
            yield Check(False, "timestamps", "the WACZ carries no valid time-stamp token for its "
                        f"checkpoint of size {checkpoint.size}")
    elif tokens:
        yield Check(True, f"{len(tokens)} time-stamp token(s) carried for the checkpoint",
                    "not checked: give the TSAs' roots with --tsa-root")
    return checkpoint


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


# --- the command ---------------------------------------------------------------------------------

WARC_SUFFIXES = (".warc", ".warc.gz")


def run(folder: str | Path | None, log: str | None, key: str, origin: str | None = None,
        echo: Callable[[str], None] = print, *, entry: int | None = None,
        wacz_key: str | None = None, allow_unpinned: bool = False,
        fragment: str | None = None, archive: str | None = None,
        state: str | Path | None = None, remember: bool = True,
        tsa_roots: Sequence[str | Path] = (), witnesses: Sequence[str] = (),
        quorum: int | None = None, domain_roots: Sequence[str | Path] = ()) -> int:
    """Check ``folder`` (a capture folder, a WARC or a WACZ) or ``fragment`` at ``archive``
    against the log at ``log`` signed by verifier key ``key`` (and, given PEM files of TSA roots,
    the checkpoint's time-stamps), printing one line per check through ``echo``; return the exit
    status."""
    checks = _checks(folder, log, key, origin, entry=entry, wacz_key=wacz_key,
                     allow_unpinned=allow_unpinned, fragment=fragment, archive=archive,
                     state=state, remember=remember, tsa_root_files=tsa_roots,
                     witnesses=witnesses, quorum=quorum, domain_root_files=domain_roots)
    failed = False
    for check in checks:
        echo(check.line())
        failed = failed or (not check.ok and check.fatal)
    return 1 if failed else 0


def _checks(target: str | Path | None, log: str | None, key: str, origin: str | None, *,
            entry: int | None, wacz_key: str | None, allow_unpinned: bool,
            fragment: str | None, archive: str | None, state: str | Path | None,
            remember: bool, tsa_root_files: Sequence[str | Path] = (),
            witnesses: Sequence[str] = (), quorum: int | None = None,
            domain_root_files: Sequence[str | Path] = ()) -> Iterator[Check]:
    """The checks for whichever input was given, in order."""
    try:
        verifier = Ed25519Verifier.from_vkey(key)
    except READ_ERRORS as exc:
        yield Check(False, "log key", str(exc))
        return
    roots: list[x509.Certificate] | None = None
    if tsa_root_files:
        roots = []
        for root_file in tsa_root_files:
            try:
                roots += load_roots(root_file)
            except TimestampError as exc:
                yield Check(False, "TSA roots", str(exc))
                return
    try:
        policy = witness_policy(witnesses, quorum)
    except ProvenanceError as exc:
        yield Check(False, "witness policy", str(exc))
        return
    origin = origin or verifier.name
    client = LogClient(log, origin, verifier, policy=policy) if log else None
    memory = CheckpointMemory(state or default_state_dir()) if remember else None
    if fragment is not None or archive is not None:
        if fragment is None or archive is None or target is not None:
            yield Check(False, "input", "give --fragment ID with --archive URL, and no path")
        elif client is None:
            yield Check(False, "log", "a fragment is checked against a log: give --log")
        else:
            yield from verify_fragment(fragment, archive, client, memory, tsa_roots=roots)
        return
    if target is None:
        yield Check(False, "input", "give a capture folder, a WARC, a WACZ, or --fragment ID")
        return
    path = Path(target)
    is_warc = path.name.lower().endswith(WARC_SUFFIXES) and not path.is_dir()
    if entry is not None and not is_warc:
        yield Check(False, "input", "--entry N is for a WARC (a folder or a WACZ names its entry)")
        return
    if path.suffix.lower() == ".wacz" and not path.is_dir():
        try:
            options = WaczOptions(load_wacz_key(wacz_key) if wacz_key else None, allow_unpinned)
        except READ_ERRORS as exc:
            yield Check(False, "WACZ key", str(exc))
            return
        if domain_root_files:
            domain_roots: list[x509.Certificate] = []
            for root_file in domain_root_files:
                try:
                    # The same PEM bundle reader as the TSAs' roots; its errors name the file.
                    domain_roots += load_roots(root_file)
                except TimestampError as exc:
                    yield Check(False, "domain roots", str(exc).replace("TSA roots", "domain roots"))
                    return
            options = dataclasses.replace(options, domain_roots=tuple(domain_roots))
        yield from verify_wacz(path, verifier, origin, client, memory, options, tsa_roots=roots)
        return
    if client is None:
        yield Check(False, "log", "give the log with --log DIR|URL")
    elif is_warc:
        yield from verify_warc(path, client, memory, entry, tsa_roots=roots)
    elif path.is_dir():
        yield from verify_capture_folder(path, client, memory, tsa_roots=roots)
    else:
        yield Check(False, "input", f"{path} is not a capture folder, a .warc, .warc.gz or .wacz")


def build_parser(prog: str = "python -m provenance.verify") -> argparse.ArgumentParser:
    """The verifier's options, shared by ``python -m provenance.verify`` and ``flask verify``."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", metavar="FOLDER|WARC|WACZ",
                        help="a downloaded capture folder, a .warc/.warc.gz or a .wacz")
    parser.add_argument("--log", help="the log: a directory or an http(s) prefix (optional for a "
                        "WACZ, which carries its proofs)")
    parser.add_argument("--key", required=True, help="the log's verifier key, <name>+<id>+<key>")
    parser.add_argument("--origin", help="the log's origin line (default: the key's name)")
    parser.add_argument("--entry", type=int, metavar="N",
                        help="a WARC's entry index, as the reader page prints it (else the log "
                        f"is scanned, at most its last {MAX_SCAN_ENTRIES} entries)")
    parser.add_argument("--wacz-key", metavar="FILE|URL",
                        help="the archive's WACZ key document (its /archive/wacz-key.json)")
    parser.add_argument("--allow-unpinned", action="store_true",
                        help="accept a WACZ signed by a key not given with --wacz-key (or, in "
                        "domain mode, under a root not given with --domain-root)")
    parser.add_argument("--domain-root", action="append", default=[], metavar="PEM",
                        help="a PEM file of root certificates trusted for domain-mode WACZ "
                        "signatures (repeatable)")
    parser.add_argument("--fragment", metavar="ID", help="check a fragment by id (with --archive)")
    parser.add_argument("--archive", metavar="URL", help="the archive serving the fragment")
    parser.add_argument("--state", metavar="DIR", help="where the last checkpoint seen of each "
                        "origin is kept (default $XDG_STATE_HOME/samizdat-verify)")
    parser.add_argument("--no-state", action="store_true",
                        help="neither compare with nor remember checkpoints seen before")
    parser.add_argument("--tsa-root", action="append", default=[], metavar="PEM",
                        help="a PEM file of trusted TSA root certificates (repeatable): then check "
                             "the checkpoint's RFC 3161 time-stamps, and fail without a valid one")
    parser.add_argument("--witness", action="append", default=[], metavar="VKEY",
                        help="a witness's cosignature key (repeatable): the checkpoint must carry "
                             "--quorum of their cosignatures")
    parser.add_argument("--quorum", type=int, metavar="K",
                        help="how many of the --witness keys must have cosigned (default 1)")
    parser.add_argument("--keys", action="store_true",
                        help="also read the log's key rotations and revocations: refuse a "
                        "checkpoint signed only by a revoked log key, and a WACZ (the one given, "
                        "and --check-wacz) or pack (--check-pack) signed after its key's revocation")
    parser.add_argument("--check-wacz", action="append", default=[], metavar="WACZ",
                        help="a WACZ to refuse if signed after its key's revocation (implies --keys)")
    parser.add_argument("--check-pack", action="append", default=[], metavar="FILE",
                        help="a pack index or catalogue to refuse likewise (implies --keys)")
    parser.add_argument("--keys-max-entries", type=int, default=DEFAULT_MAX_SCAN, metavar="N",
                        help="read at most N log entries looking for key entries")
    parser.add_argument("--pack", metavar="URL|FILE",
                        help="a widget pack index.json or shard: its signature, and every "
                             "fragment's approval in the log")
    parser.add_argument("--pack-key", help="the pack key that signs indexes (the x of packs/key.json)")
    parser.add_argument("--max-age", type=int, default=0, metavar="SECONDS",
                        help="with --pack: refuse an index whose checkpoint is older than this, "
                             "as the widget does (its SAMIZDAT_EMBED_CHECKPOINT_MAX_AGE_HOURS); "
                             "0: any age")
    parser.add_argument("--now", type=parse_now, metavar="TIME",
                        help="with --pack: the time the age is measured at (unix seconds or "
                             "ISO 8601 with offset; default: now)")
    return parser


def parse_now(value: str) -> float:
    """``--now``: unix seconds, or an RFC 3339 / ISO 8601 time with its offset."""
    if re.fullmatch(r"[0-9]{1,12}", value):
        return float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither unix seconds nor an ISO time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs its offset (Z or +00:00)")
    return moment.timestamp()


def run_pack(pack: str, pack_key: str | None, log: str | None, key: str, origin: str | None = None,
             echo: Callable[[str], None] = print, *, witnesses: Sequence[str] = (),
             quorum: int | None = None, max_age: float | None = None, now: float | None = None,
             state: str | Path | None = None) -> int:
    """Check a widget pack index or shard (provenance/verify_pack.py) against the log signed by
    ``key`` (and, with ``log``, the log itself), under the witness policy, the widget's maximum
    checkpoint age at ``now`` and, with ``state``, the largest pack checkpoint accepted before;
    one line per check; return the exit status."""
    try:
        verifier = Ed25519Verifier.from_vkey(key)
        policy = witness_policy(witnesses, quorum)
    except ProvenanceError as exc:
        echo(Check(False, "log key or witness policy", str(exc)).line())
        return 1
    client = LogClient(log, origin or verifier.name, verifier) if log else None
    # Pack checkpoints lag the log's: they are remembered apart from the log's own.
    memory = CheckpointMemory(Path(state) / "packs") if state else None
    failed = False
    for ok, what, detail in verify_pack(pack, pack_key, verifier, client, policy=policy,
                                        max_age=max_age, now=now, memory=memory):
        echo(Check(ok, what, detail).line())
        failed = failed or not ok
    return 1 if failed else 0


def main(argv: list[str] | None = None, prog: str = "python -m provenance.verify",
         echo: Callable[[str], None] = print) -> int:
    """``python -m provenance.verify FOLDER|WARC|WACZ --log LOCATION --key VKEY``: the verifier."""
    args = build_parser(prog).parse_args(argv)
    if args.pack:
        if args.target is not None or args.fragment:
            echo(Check(False, "input", "--pack is checked on its own: give no other input").line())
            return 1
        return run_pack(args.pack, args.pack_key, args.log, args.key, args.origin, echo,
                        witnesses=args.witness, quorum=args.quorum, max_age=args.max_age or None,
                        now=args.now, state=None if args.no_state else args.state)
    keys = args.keys or args.check_wacz or args.check_pack
    status = 0
    if not keys or args.target is not None or args.fragment or args.archive:
        status = run(args.target, args.log, args.key, args.origin, echo, entry=args.entry,
                     wacz_key=args.wacz_key, allow_unpinned=args.allow_unpinned,
                     fragment=args.fragment, archive=args.archive, state=args.state,
                     remember=not args.no_state, tsa_roots=args.tsa_root,
                     witnesses=args.witness, quorum=args.quorum,
                     domain_roots=args.domain_root)
    if keys:
        if not args.log:
            echo(Check(False, "key entries", "they are read from the log: give --log").line())
            return 1
        waczs = list(args.check_wacz)
        if args.target and str(args.target).lower().endswith(".wacz"):
            waczs.insert(0, args.target)
        status |= run_key_checks(args.log, args.key, args.origin, waczs, args.check_pack,
                                 echo=echo, max_entries=args.keys_max_entries)
    return status


if __name__ == "__main__":
    sys.exit(main())
