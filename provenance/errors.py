"""The provenance package's own errors: every refusal carries one clear, human reason."""

from __future__ import annotations


class ProvenanceError(ValueError):
    """Something offered as log data (a proof, tile, note, checkpoint) was refused."""


class ProofError(ProvenanceError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


class TileError(ProvenanceError):
    """A tile or entry bundle is missing, of the wrong size, or malformed."""


class NoteError(ProvenanceError):
    """A signed note, verifier key or checkpoint is malformed or its signatures do not verify."""


class PolicyError(ProvenanceError):
    """A checkpoint does not carry enough valid cosignatures for the configured witness policy."""


class TimestampError(ProvenanceError):
    """An RFC 3161 time-stamp token is malformed, for other bytes, or not signed by a trusted TSA."""


class LogBusyError(ProvenanceError):
    """Another writer holds the log's lock; a pass can be tried again once it is done."""
