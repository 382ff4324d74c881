"""The tlog-witness ``add-checkpoint`` protocol (c2sp.org/tlog-witness), without a web framework.

:meth:`Witness.add_checkpoint` takes a request body and returns the status, type and body to
answer, every refusal with the spec's status code and a one-line reason:

- 400 a malformed body, an old size above the checkpoint's, a proof where none can be;
- 404 a checkpoint of a log (origin) this witness does not witness;
- 403 no signature by a key trusted for that origin (unknown keys are ignored), or signatures only
  by keys the witnessed-logs file revokes from a size at or below the checkpoint's;
- 409 an old size other than the last one cosigned (body: that size, ``text/x.tlog.size``), or the
  same size with another root hash (a fork);
- 422 a consistency proof that does not verify (a fork, or a rolled-back log);
- 503 the witness's own configuration or state is unreadable (it then cosigns nothing);
- 200 one ``cosignature/v1`` line, after the new state is stored.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings

from provenance import merkle
from provenance.cosignature import CosignatureSigner
from provenance.errors import NoteError, ProofError
from provenance.note import MAX_NOTE_BYTES, Checkpoint, b64encode, open_note, parse_note
from samizdat.keyfile import load_or_create_ed25519_key
from witness.logs import WitnessConfigError, WitnessedLogs
from witness.state import WitnessState, WitnessStateError

log = logging.getLogger(__name__)

MAX_PROOF_LINES = 63  # the spec's limit: enough for any tree of up to 2^63 leaves
# "old <size>" (at most 24 bytes), 63 base64 hashes of 45 bytes each, the blank line, the note.
MAX_BODY_BYTES = 24 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_BYTES
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT = "text/plain; charset=utf-8"
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Reply:
    """What to answer: an HTTP status, a content type and a body."""

    status: int
    body: bytes
    content_type: str = TEXT


class Refused(Exception):
    """A request the witness refuses; carries the reply to send."""

    def __init__(self, status: int, reason: str, content_type: str = TEXT, body: bytes | None = None,
                 keep: str | None = None):
        super().__init__(reason)
        self.reply = Reply(status, body if body is not None else (reason + "\n").encode(), content_type)
        self.keep = keep  # the kind under which to keep the refused checkpoint (state.py), if any


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed request body: the old size, the proof and the signed checkpoint's bytes."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_request(body: bytes) -> AddCheckpoint:
    """Split an add-checkpoint body; Refused (400) saying what is malformed."""
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    head, blank, note = body.partition(b"\n\n")
    if not blank:
        raise Refused(400, "the body needs an 'old <size>' line, the proof lines, a blank line, "
                           "then the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise Refused(400, "the lines before the checkpoint must be ASCII") from None
    found = _OLD_LINE.fullmatch(lines[0])
    if not found or int(found.group(1)) >= 1 << 63:
        raise Refused(400, "the first line must be 'old <size>', a decimal without leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise Refused(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for number, line in enumerate(lines[1:], 1):
        try:
            node = base64.b64decode(line, validate=True)
        except binascii.Error:
            node = b""
        if len(node) != merkle.HASH_SIZE or b64encode(node) != line:
            raise Refused(400, f"proof line {number} is not a {merkle.HASH_SIZE}-byte hash in base64")
        proof.append(node)
    return AddCheckpoint(int(found.group(1)), tuple(proof), note)


class Witness:
    """A witness: its cosigning key, the logs it witnesses and what it cosigned of each."""

    def __init__(self, signer: CosignatureSigner, logs: WitnessedLogs, state: WitnessState) -> None:
        self.signer = signer
        self.logs = logs
        self.state = state

    def add_checkpoint(self, body: bytes) -> Reply:
        """Answer one add-checkpoint request body (see the module's docstring)."""
        try:
            return self._add_checkpoint(body)
        except Refused as refused:
            return refused.reply
        except (WitnessConfigError, WitnessStateError) as exc:
            log.error("witness cannot answer: %s", exc)
            return Reply(503, b"the witness cannot check this checkpoint now\n")

    def _add_checkpoint(self, body: bytes) -> Reply:
        request = parse_request(body)
        try:
            note = parse_note(request.note)
            checkpoint = Checkpoint.parse(note.text)
        except NoteError as exc:
            raise Refused(400, f"not a signed checkpoint: {exc}") from None
        keys = self.logs.verifiers(checkpoint.origin)
        if not keys:
            raise Refused(404, f"this witness does not witness the log {checkpoint.origin}")
        try:
            opened = open_note(request.note, keys)
        except NoteError as exc:
            raise Refused(403, f"no valid signature by the log's key: {exc}") from None
        self._refuse_revoked(checkpoint, opened.verified, keys)
        if request.old_size > checkpoint.size:
            raise Refused(400, f"old size {request.old_size} is larger than the checkpoint's "
                               f"size {checkpoint.size}")
        with self.state.locked(checkpoint.origin) as seen:
            try:
                self._check_consistency(request, checkpoint, seen.size, seen.root_hash)
            except Refused as refused:
                if refused.keep:
                    self._keep(checkpoint.origin, request.note, refused.keep)
                raise
            cosignature = self.signer.cosign(note.text)
            self.state.save(checkpoint.origin, checkpoint.size, checkpoint.root_hash, note.text)
        log.info("witness: cosigned %s at size %d", checkpoint.origin, checkpoint.size)
        return Reply(200, cosignature.line().encode())

    def _refuse_revoked(self, checkpoint: Checkpoint, verified, keys) -> None:
        """Refused (403) when every valid log signature is by a key revoked from a size at or
        below the checkpoint's: a stolen key alone gets no cosignature once the operator says so."""
        revoked = self.logs.revoked_from(checkpoint.origin)
        if not revoked:
            return
        by_id = {(k.name, k.key_id): k.vkey for k in keys}
        dead = []
        for sig in verified:
            from_size = revoked.get(by_id[(sig.name, sig.key_id)])
            if from_size is None or checkpoint.size < from_size:
                return
            dead.append(f"{sig.name}+{sig.key_id:08x} (revoked from size {from_size})")
        log.warning("witness: refused %s at size %d: signed only by revoked key(s)",
                    checkpoint.origin, checkpoint.size)
        raise Refused(403, f"the checkpoint of size {checkpoint.size} is signed only by revoked "
                           f"log key(s): {', '.join(dead)}")

    def _keep(self, origin: str, note: bytes, kind: str) -> None:
        """Keep a refused checkpoint; failing to is logged, never a reason to answer 500."""
        try:
            self.state.keep_refused(origin, note, kind)
        except OSError as exc:
            log.error("witness: could not keep the refused checkpoint of %s: %s", origin, exc)

    @staticmethod
    def _check_consistency(request: AddCheckpoint, checkpoint: Checkpoint,
                           seen_size: int, seen_root: bytes) -> None:
        """Refused unless ``checkpoint`` extends (or is) the last one cosigned, by the proof."""
        if request.old_size != seen_size:
            raise Refused(409, f"old size {request.old_size} is not the last cosigned size",
                          SIZE_CONTENT_TYPE, f"{seen_size}\n".encode())
        if seen_size == 0:
            if request.proof:
                raise Refused(400, "a consistency proof from size 0 must be empty")
            if checkpoint.size == 0 and checkpoint.root_hash != merkle.EMPTY_ROOT:
                raise Refused(400, "a checkpoint of size 0 must carry the empty tree's root")
            return
        if seen_size == checkpoint.size:
            if request.proof:
                raise Refused(400, "a consistency proof between equal sizes must be empty")
            if seen_root != checkpoint.root_hash:
                log.warning("witness: %s signed two roots for size %d: a fork",
                            checkpoint.origin, seen_size)
                raise Refused(409, f"another root hash was cosigned for size {seen_size}: a fork",
                              keep="fork")
            return
        try:
            merkle.verify_consistency(seen_size, checkpoint.size, seen_root,
                                      checkpoint.root_hash, request.proof)
        except ProofError as exc:
            # Signed by the log and inconsistent with what it signed before: worth an operator's
            # look (it may be proof of a fork), never a cosignature.
            log.warning("witness: refused %s at size %d: %s", checkpoint.origin, checkpoint.size, exc)
            raise Refused(422, f"the consistency proof does not verify: {exc}",
                          keep="unproven") from None


def witness_signer(settings: Settings) -> CosignatureSigner:
    """This server's cosigning key (its file made on first use) under its witness name."""
    key = load_or_create_ed25519_key(settings.witness_key_path, "witness key")
    return CosignatureSigner(settings.witness_key_name, key)


def state_directory(settings: Settings) -> Path:
    """Where the witness keeps the last checkpoint it cosigned per log."""
    return settings.data_dir / "witness"


def build_witness(settings: Settings) -> Witness:
    """The witness ``settings`` describe; they must name a witnessed-logs file."""
    if settings.witnessed_logs_path is None:
        raise WitnessConfigError("SAMIZDAT_WITNESSED_LOGS is not set: this server witnesses nothing")
    return Witness(witness_signer(settings), WitnessedLogs(settings.witnessed_logs_path),
                   WitnessState(state_directory(settings)))
