"""The log's side of C2SP tlog-witness: ask each configured witness to cosign the checkpoint.

After a pass publishes, :func:`witness_checkpoint` posts the signed checkpoint to every witness
that has not cosigned it yet, with a consistency proof from the size that witness last cosigned
(remembered in a dotfile per witness beside the log, or learnt from its 409 reply), checks each
cosignature with the witness's key and rewrites the checkpoint file with the valid ones appended
(the checkpoint's text and the log's signature unchanged). A witness that is down or refuses is
one log line and is asked again next pass; nothing here ever stops the log from appending.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from provenance import merkle
from provenance.cosignature import CosignatureVerifier, add_cosignatures
from provenance.errors import NoteError, ProvenanceError
from provenance.note import (
    MAX_NOTE_BYTES,
    Checkpoint,
    Signature,
    Verifier,
    b64encode,
    open_checkpoint,
    open_note,
)
from provenance.tiles import CHECKPOINT_PATH, DirectoryFetcher, TileReader, write_file
from samizdat.atomicfile import write_atomic

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MAX_REPLY_BYTES = 64 * 1024  # a few cosignature lines; anything longer is not a witness's reply
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class WitnessError(ProvenanceError):
    """A witness did not cosign: unreachable, refused, or its reply did not verify."""


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log asks: its cosignature key and its submission prefix."""

    verifier: CosignatureVerifier
    url: str  # POST <url>/add-checkpoint

    @classmethod
    def parse(cls, vkey: str, url: str) -> WitnessEndpoint:
        """From a ``SAMIZDAT_WITNESSES`` entry."""
        return cls(CosignatureVerifier.from_vkey(vkey), url.rstrip("/"))

    @property
    def label(self) -> str:
        """The witness's key name, for log lines."""
        return self.verifier.name


@dataclass
class WitnessReport:
    """One pass: who cosigned the current checkpoint, who failed and why."""

    size: int = 0
    cosigned: list[str] = field(default_factory=list)  # every valid cosigner, old and new
    failures: dict[str, str] = field(default_factory=dict)
    quorum: int = 0

    @property
    def quorum_met(self) -> bool:
        """Whether the published checkpoint carries the cosignatures the policy asks for."""
        return len(self.cosigned) >= self.quorum


def _memory_path(log_dir: Path, endpoint: WitnessEndpoint) -> Path:
    """The dotfile remembering what this witness last cosigned (never published: a dotfile)."""
    digest = hashlib.sha256(endpoint.verifier.vkey.encode()).hexdigest()[:16]
    return log_dir / f".witness-{digest}.json"


def remembered_size(log_dir: Path, endpoint: WitnessEndpoint) -> int:
    """The size this witness last cosigned, as far as the log knows (0: never, or forgotten)."""
    try:
        data = json.loads(_memory_path(log_dir, endpoint).read_text(encoding="utf-8"))
        size = data["size"]
        return size if isinstance(size, int) and size >= 0 else 0
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # the witness's 409 tells the right size


def remember_size(log_dir: Path, endpoint: WitnessEndpoint, size: int) -> None:
    """Store what this witness last cosigned, atomically."""
    memory = {"witness": endpoint.verifier.vkey, "url": endpoint.url, "size": size}
    write_atomic(_memory_path(log_dir, endpoint), json.dumps(memory).encode(), mode=0o600,
                 make_parents=False)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A witness answers where it was asked: a redirect is a failure."""

    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_add_checkpoint(url: str, body: bytes, timeout: float = TIMEOUT_SECONDS
                        ) -> tuple[int, str, bytes]:
    """POST an add-checkpoint body; (status, content type, reply of at most MAX_REPLY_BYTES)."""
    request = urllib.request.Request(f"{url}/add-checkpoint", data=body, method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        try:
            response = _OPENER.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            response = exc  # a refusal still carries the witness's status and body
        with response:
            data = response.read(MAX_REPLY_BYTES + 1)
            status = response.status if hasattr(response, "status") else response.code
            content_type = response.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise WitnessError(f"no reply: {str(reason) or type(reason).__name__}") from None
    if len(data) > MAX_REPLY_BYTES:
        raise WitnessError(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
    return status, content_type, data


def request_body(old_size: int, proof: Sequence[bytes], signed_checkpoint: bytes) -> bytes:
    """An add-checkpoint request body: the old size, the proof lines, a blank line, the note."""
    lines = f"old {old_size}\n" + "".join(b64encode(h) + "\n" for h in proof) + "\n"
    return lines.encode() + signed_checkpoint


def request_cosignature(endpoint: WitnessEndpoint, log_dir: Path, signed_checkpoint: bytes,
                        checkpoint: Checkpoint, timeout: float = TIMEOUT_SECONDS) -> Signature:
    """The witness's verified cosignature on ``signed_checkpoint``; WitnessError saying why not."""
    old = remembered_size(log_dir, endpoint)
    for _ in range(2):  # a 409 teaches the size the witness holds: then one more try
        if old > checkpoint.size:
            raise WitnessError(f"it cosigned size {old} already, more than this checkpoint's "
                               f"{checkpoint.size}: was the log rolled back?")
        proof: list[bytes] = []
        if 0 < old < checkpoint.size:
            reader = TileReader(DirectoryFetcher(log_dir), checkpoint.size)
            proof = merkle.consistency_proof(reader, old, checkpoint.size)
        status, content_type, reply = post_add_checkpoint(
            endpoint.url, request_body(old, proof, signed_checkpoint), timeout)
        if status == 409 and content_type.split(";")[0].strip() == SIZE_CONTENT_TYPE:
            text = reply.decode("ascii", "replace")
            if not text.endswith("\n") or not text[:-1].isdigit():
                raise WitnessError("its 409 reply is not a tree size")
            old = int(text[:-1])
            remember_size(log_dir, endpoint, old)
            continue
        if status != 200:
            reason = reply.decode("utf-8", "replace").strip().splitlines()
            raise WitnessError(f"HTTP {status}" + (f": {reason[0][:200]}" if reason else ""))
        signature = _verified_cosignature(endpoint.verifier, signed_checkpoint, reply)
        remember_size(log_dir, endpoint, checkpoint.size)
        return signature
    raise WitnessError(f"it still disagrees about the last size it cosigned ({old})")


def _verified_cosignature(verifier: CosignatureVerifier, signed_checkpoint: bytes,
                          reply: bytes) -> Signature:
    """The one line of ``reply`` that is ``verifier``'s valid cosignature (others are ignored)."""
    if not reply.startswith("—".encode()) or not reply.endswith(b"\n"):
        raise WitnessError("its reply is not signature lines")
    try:
        opened = open_note(signed_checkpoint + reply, [verifier])
    except NoteError as exc:
        raise WitnessError(f"its cosignature does not verify: {exc}") from None
    return next(s for s in opened.verified)


def witness_checkpoint_in(log_dir: Path, origin: str, log_verifier: Verifier,
                          endpoints: Sequence[WitnessEndpoint], quorum: int,
                          lock_log: Callable[[], AbstractContextManager] | None = None,
                          timeout: float = TIMEOUT_SECONDS) -> WitnessReport:
    """Ask every witness that has not cosigned ``log_dir``'s checkpoint yet; append what verifies.

    ``lock_log`` (a context manager factory) holds the log's writer lock while the file is
    rewritten, so a checkpoint published meanwhile is never overwritten by an older one.
    """
    report = WitnessReport(quorum=quorum)
    path = log_dir / CHECKPOINT_PATH
    try:
        data = DirectoryFetcher(log_dir).fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
    except FileNotFoundError:
        return report
    verifiers = [e.verifier for e in endpoints]
    checkpoint, opened = open_checkpoint(data, origin, log_verifier, verifiers)
    report.size = checkpoint.size
    have = {(s.name, s.key_id) for s in opened.verified}
    report.cosigned = [e.label for e in endpoints if (e.verifier.name, e.verifier.key_id) in have]
    new: list[Signature] = []
    for endpoint in endpoints:
        if (endpoint.verifier.name, endpoint.verifier.key_id) in have:
            continue
        try:
            new.append(request_cosignature(endpoint, log_dir, data, checkpoint, timeout))
        except (ProvenanceError, OSError) as exc:  # this witness only: the others still asked
            report.failures[endpoint.label] = str(exc)
            log.warning("witness %s did not cosign the checkpoint of size %d: %s",
                        endpoint.label, checkpoint.size, exc)
    if new:
        with (lock_log() if lock_log is not None else nullcontext()):
            current = path.read_bytes()
            if current != data:  # a new checkpoint was published meanwhile: its turn next pass
                return report
            write_file(log_dir, CHECKPOINT_PATH, add_cosignatures(data, new))
        report.cosigned += [s.name for s in new]
    if len(report.cosigned) < quorum:
        log.warning("checkpoint of size %d has %d of the %d witness cosignature(s) its policy "
                    "needs", checkpoint.size, len(report.cosigned), quorum)
    return report
