"""What the packs carry of the provenance log: the signed checkpoint and each fragment's proof.

An index names the checkpoint it was built against (the signed note's exact bytes, cosignatures
included); each fragment in a shard carries its decision entry's log index, the entry's exact
bytes and the RFC 9162 inclusion proof under that checkpoint. embed.js checks all of it before
showing a fragment, so a stolen pack key alone cannot put words on a supporter's page: they
would have to be in the public log first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from provenance import merkle
from provenance.decisions import PUBLIC_DECISIONS, LoggedDecision
from provenance.entries import (
    ROTATE,
    DecisionEntry,
    EntryError,
    KeyEntry,
    parse_entry,
    text_sha256,
)
from provenance.errors import ProvenanceError
from provenance.note import Checkpoint, Ed25519Verifier, b64encode, open_checkpoint
from provenance.tiles import CHECKPOINT_PATH, DirectoryFetcher, TileReader

@dataclass
class PackLog:
    """The log state one publish is built against; proofs are computed once per entry."""

    vkey: str  # the log's verifier key, which embed.js pins
    checkpoint_note: bytes
    checkpoint: Checkpoint
    reader: merkle.StoredHashes
    # The log-key rotations under the checkpoint, in log order, each {"index", "entry", "proof"}:
    # what lets a widget pinned to an earlier log key follow to the one signing now.
    rotations: list[dict] = field(default_factory=list)
    _proofs: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def proof_of(self, logged: LoggedDecision, text: str) -> dict | None:
        """What a shard carries for a fragment reading ``text`` whose decision is ``logged``
        (provenance.decisions.logged_approvals), or None when those words are not logged under
        this checkpoint: an entry past it, or one for other words."""
        fragment_id = logged.fragment_id
        if logged.log_index >= self.checkpoint.size:
            return None
        try:
            entry = parse_entry(logged.entry)
        except EntryError:
            return None
        if (not isinstance(entry, DecisionEntry) or entry.fragment != fragment_id
                or entry.decision not in PUBLIC_DECISIONS or entry.text_sha256 != text_sha256(text)):
            return None
        index = logged.log_index
        if index not in self._proofs:
            proof = merkle.inclusion_proof(self.reader, self.checkpoint.size, index)
            self._proofs[index] = [b64encode(h) for h in proof]
        return {"index": index, "entry": logged.entry.decode(), "proof": self._proofs[index]}


def log_rotations(key_entries: Iterable[tuple[int, bytes]], checkpoint: Checkpoint,
                  reader: merkle.StoredHashes) -> list[dict]:
    """The log-key rotations among ``key_entries`` (log index, exact bytes) that ``checkpoint``
    covers, in log order, each with its inclusion proof under that checkpoint."""
    carried = []
    for index, data in sorted(key_entries):
        if index >= checkpoint.size:
            continue
        try:
            entry = parse_entry(data)
        except EntryError:
            continue
        if isinstance(entry, KeyEntry) and entry.role == "log" and entry.action == ROTATE:
            proof = merkle.inclusion_proof(reader, checkpoint.size, index)
            carried.append({"index": index, "entry": data.decode(),
                            "proof": [b64encode(h) for h in proof]})
    return carried


def read_pack_log(log_dir: Path, vkey: str, key_entries: Iterable[tuple[int, bytes]] = ()) -> PackLog:
    """The log in ``log_dir`` as packs use it: its checkpoint (verified with ``vkey``, since
    a widget will refuse anything else), tiles, and the log-key rotations among ``key_entries``
    (log index, bytes) it covers; ProvenanceError if it cannot be read."""
    verifier = Ed25519Verifier.from_vkey(vkey)
    try:
        note = (log_dir / CHECKPOINT_PATH).read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"the log has no readable checkpoint: {exc.strerror or exc}") from None
    checkpoint, _ = open_checkpoint(note, verifier.name, verifier)
    # Every fragment's proof over one tree: each subtree is hashed once, not once per proof.
    reader = merkle.CachedSubtrees(TileReader(DirectoryFetcher(log_dir), checkpoint.size))
    return PackLog(vkey, note, checkpoint, reader, log_rotations(key_entries, checkpoint, reader))
