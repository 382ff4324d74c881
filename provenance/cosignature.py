"""C2SP tlog-cosignature (cosignature/v1, Ed25519, signature type 0x04) and a k-of-n witness policy.

A cosignature is a witness's note signature on a checkpoint: 8-byte big-endian timestamp then an
Ed25519 signature over ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint's note text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provenance.errors import NoteError, PolicyError
from provenance.note import (
    Checkpoint,
    Ed25519Verifier,
    Signature,
    Verifier,
    open_checkpoint,
    parse_vkey,
)

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs for the checkpoint note ``text`` at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


class CosignatureVerifier(Ed25519Verifier):
    """A witness's Ed25519 cosigning key; verifies cosignature/v1 signatures on checkpoints.

    The key itself is a signed-note Ed25519 key; only its signature type (and so its key ID) and
    what it signs differ.
    """

    alg = ALG_COSIGNATURE_V1

    def __init__(self, name: str, public_key: bytes, max_future: int | None = 300) -> None:
        """``max_future``: seconds a timestamp may lie ahead of our clock (None: no limit)."""
        super().__init__(name, public_key)
        self.max_future = max_future

    @classmethod
    def from_vkey(cls, vkey: str, max_future: int | None = 300) -> CosignatureVerifier:
        """Parse a verifier key of signature type 0x04."""
        name, public_key = parse_vkey(vkey, ALG_COSIGNATURE_V1)
        return cls(name, public_key, max_future)

    def timestamp(self, text: bytes, signature: bytes) -> int:
        """The cosignature's timestamp if it verifies; NoteError saying why not."""
        if len(signature) != 8 + 64:
            raise NoteError(f"a cosignature has 72 bytes after the key ID, got {len(signature)}")
        stamp = int.from_bytes(signature[:8], "big")
        if stamp > MAX_TIMESTAMP:
            raise NoteError("cosignature timestamp exceeds 2^63 - 1")
        if self.max_future is not None and stamp > time.time() + self.max_future:
            raise NoteError(f"cosignature by {self.name} is dated in the future ({stamp})")
        try:
            self._key.verify(signature[8:], cosignature_message(text.decode(), stamp))
        except InvalidSignature as exc:
            raise NoteError(f"invalid cosignature by {self.name}") from exc
        return stamp

    def verify(self, text: bytes, signature: bytes) -> bool:
        """See :class:`provenance.note.Verifier`; a refusal raises NoteError naming its reason."""
        self.timestamp(text, signature)
        return True


class CosignatureSigner:
    """A witness's cosigning key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, public)
        self.name, self.key_id = self.verifier.name, self.verifier.key_id

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        """A new random cosigning key."""
        return cls(name, Ed25519PrivateKey.generate())

    def cosign(self, checkpoint_text: str, timestamp: int | None = None) -> Signature:
        """The cosignature line for a checkpoint's note text (now, unless ``timestamp`` given)."""
        Checkpoint.parse(checkpoint_text)  # a witness only ever cosigns checkpoints
        stamp = int(time.time()) if timestamp is None else timestamp
        sig = self._key.sign(cosignature_message(checkpoint_text, stamp))
        return Signature(self.name, self.key_id, stamp.to_bytes(8, "big") + sig)


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint whose log signature verified, with the witnesses that cosigned it and when."""

    checkpoint: Checkpoint
    cosigners: dict[str, int]  # witness name → cosignature timestamp


@dataclass(frozen=True)
class WitnessPolicy:
    """Accept a checkpoint only when at least ``threshold`` of ``witnesses`` cosigned it."""

    witnesses: tuple[CosignatureVerifier, ...]
    threshold: int

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= len(self.witnesses):
            raise PolicyError(f"a policy of {self.threshold} of {len(self.witnesses)} witnesses is impossible")
        if len({(w.name, w.key_id) for w in self.witnesses}) != len(self.witnesses):
            raise PolicyError("a witness is listed twice in the policy")

    def verify(self, data: bytes, origin: str, log_verifier: Verifier,
               extra: Iterable[Verifier] = ()) -> Cosigned:
        """Open a signed checkpoint and check the policy; raise NoteError or PolicyError saying why."""
        cosigned = self.cosigners(data, origin, log_verifier, extra)
        self.check(cosigned)
        return cosigned

    def check(self, cosigned: Cosigned) -> None:
        """PolicyError unless ``cosigned`` carries at least ``threshold`` of the cosignatures."""
        if len(cosigned.cosigners) < self.threshold:
            named = ", ".join(sorted(cosigned.cosigners)) or "none"
            raise PolicyError(f"checkpoint has {len(cosigned.cosigners)} of the {self.threshold} "
                              f"cosignatures its policy needs (cosigned by: {named})")

    def cosigners(self, data: bytes, origin: str, log_verifier: Verifier,
                  extra: Iterable[Verifier] = ()) -> Cosigned:
        """Open a signed checkpoint and say which of the witnesses cosigned it (the threshold is
        not checked: see :meth:`check`); NoteError for a bad log signature or cosignature."""
        checkpoint, opened = open_checkpoint(data, origin, log_verifier, [*self.witnesses, *extra])
        by_key = {(w.name, w.key_id): w for w in self.witnesses}
        cosigners = {}
        body = opened.text.encode()
        for sig in opened.verified:
            witness = by_key.get((sig.name, sig.key_id))
            if witness is not None:
                cosigners[witness.name] = witness.timestamp(body, sig.signature)
        return Cosigned(checkpoint, cosigners)


def add_cosignatures(data: bytes, cosignatures: Sequence[Signature]) -> bytes:
    """A signed checkpoint with cosignature lines appended (the log's own signature kept first)."""
    if not data.endswith(b"\n"):
        raise NoteError("a signed note ends with a newline")
    return data + "".join(sig.line() for sig in cosignatures).encode()
