"""An append-only log over a directory (one writer) and a client that verifies it from anywhere.

The writer appends entries, writes tiles and entry bundles, and signs a new checkpoint. The
client fetches the checkpoint and tiles from a directory or an http(s) prefix, trusts nothing it
fetched but the signature, and proves entries and consistency with checkpoints it saw before.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from provenance import merkle
from provenance.cosignature import WitnessPolicy
from provenance.errors import LogBusyError, NoteError, ProofError, ProvenanceError
from provenance.note import (
    MAX_NOTE_BYTES,
    Checkpoint,
    Ed25519Signer,
    Verifier,
    open_checkpoint,
    sign_checkpoint,
)
from provenance.tiles import (
    CHECKPOINT_PATH,
    DirectoryFetcher,
    Fetcher,
    HTTPFetcher,
    TileReader,
    TileWriter,
    write_file,
)

LOCK_NAME = ".writer.lock"  # a dotfile: not part of what is published


class LogWriter:
    """The one process that appends to a log directory; a second writer is refused."""

    def __init__(self, directory: str | os.PathLike, signer: Ed25519Signer, origin: str | None = None) -> None:
        """Open (or start) the log in ``directory``, checking its tiles against its own checkpoint."""
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.signer = signer
        self.origin = origin or signer.name
        self._lock = open(self.directory / LOCK_NAME, "a")  # noqa: SIM115 — held while open
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise LogBusyError(f"another writer holds the log in {self.directory}") from exc
        try:
            self.checkpoint = self._resume()
        except BaseException:
            self.close()
            raise

    def _resume(self) -> Checkpoint:
        path = self.directory / CHECKPOINT_PATH
        if not path.exists():
            self.tiles = TileWriter(self.directory, 0)
            return Checkpoint(self.origin, 0, merkle.EMPTY_ROOT)
        data = DirectoryFetcher(self.directory).fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
        checkpoint, _ = open_checkpoint(data, self.origin, self.signer.verifier)
        self.tiles = TileWriter(self.directory, checkpoint.size)
        if merkle.tree_hash(self.tiles, checkpoint.size) != checkpoint.root_hash:
            raise ProvenanceError("the log's tiles do not match its signed checkpoint: refusing to append")
        return checkpoint

    @property
    def size(self) -> int:
        """Entries appended so far, published or not."""
        return self.tiles.size

    def append(self, entries: Iterable[bytes]) -> int:
        """Append entries; return the new size. Nothing is public until :meth:`publish`."""
        return self.tiles.append(entries)

    def publish(self, extensions: Iterable[str] = ()) -> bytes:
        """Write the partial tiles and a newly signed checkpoint for the current size; return it."""
        self.tiles.flush()
        root = merkle.tree_hash(self.tiles, self.tiles.size)
        checkpoint = Checkpoint(self.origin, self.tiles.size, root, tuple(extensions))
        signed = sign_checkpoint(checkpoint, self.signer)
        # The checkpoint goes last, so no reader ever sees one without the tiles it needs.
        write_file(self.directory, CHECKPOINT_PATH, signed)
        self.checkpoint = checkpoint
        return signed

    def close(self) -> None:
        """Release the writer's lock."""
        self._lock.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fetcher_for(location: str) -> Fetcher:
    """A fetcher for an http(s) prefix or a local directory."""
    if location.startswith(("http://", "https://")):
        return HTTPFetcher(location)
    return DirectoryFetcher(location)


@dataclass(frozen=True)
class Inclusion:
    """An entry proven to be in the log under a checkpoint."""

    checkpoint: Checkpoint
    index: int
    entry: bytes
    proof: tuple[bytes, ...]


class LogClient:
    """Verifies a published log: signature (and witness policy), entries, consistency."""

    def __init__(self, location: str | Fetcher, origin: str, log_verifier: Verifier,
                 policy: WitnessPolicy | None = None) -> None:
        self.fetcher = fetcher_for(location) if isinstance(location, str) else location
        self.origin = origin
        self.log_verifier = log_verifier
        self.policy = policy

    def checkpoint(self) -> Checkpoint:
        """The log's current checkpoint, its signature (and cosignatures, if a policy) verified."""
        try:
            data = self.fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
        except FileNotFoundError as exc:
            raise NoteError("the log has no checkpoint") from exc
        if self.policy is not None:
            return self.policy.verify(data, self.origin, self.log_verifier).checkpoint
        return open_checkpoint(data, self.origin, self.log_verifier)[0]

    def prove_inclusion(self, checkpoint: Checkpoint, index: int) -> Inclusion:
        """Entry ``index``, proven against ``checkpoint``'s root from untrusted tiles."""
        reader = TileReader(self.fetcher, checkpoint.size)
        entry = reader.entry(index)
        proof = merkle.inclusion_proof(reader, checkpoint.size, index)
        merkle.verify_inclusion(merkle.leaf_hash(entry), index, checkpoint.size, proof, checkpoint.root_hash)
        return Inclusion(checkpoint, index, entry, tuple(proof))

    def prove_consistency(self, old: Checkpoint, new: Checkpoint) -> tuple[bytes, ...]:
        """Prove ``new`` extends ``old`` (a checkpoint seen before); ProofError names a fork or rollback."""
        if old.origin != new.origin:
            raise ProofError(f"checkpoints of two logs ({old.origin!r}, {new.origin!r}) cannot be compared")
        if old.size > new.size:
            raise ProofError(f"checkpoint of size {new.size} is older than the size {old.size} seen before: rolled back")
        if old.size == 0:
            if old.root_hash != merkle.EMPTY_ROOT:
                raise ProofError("a checkpoint of size 0 must carry the empty tree's root")
            return ()
        if old.size == new.size:
            merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, [])
            return ()
        proof = merkle.consistency_proof(TileReader(self.fetcher, new.size), old.size, new.size)
        merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        return tuple(proof)

    def verify(self, index: int, expected: bytes | None = None,
               seen: Checkpoint | None = None) -> Inclusion:
        """Fetch the checkpoint, check consistency with ``seen``, prove entry ``index`` (== expected)."""
        checkpoint = self.checkpoint()
        if seen is not None:
            self.prove_consistency(seen, checkpoint)
        inclusion = self.prove_inclusion(checkpoint, index)
        if expected is not None and inclusion.entry != expected:
            raise ProofError(f"entry {index} in the log is not the expected one")
        return inclusion
