"""C2SP signed-note (Ed25519) and tlog-checkpoint: sign, parse strictly, verify.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID || signature)``. Unknown keys are ignored; a known key whose
signature fails rejects the whole note; a note with no verified signature is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provenance.errors import NoteError
from provenance.merkle import HASH_SIZE

ALG_ED25519 = 0x01
MAX_NOTE_BYTES = 128 * 1024  # room for 16 post-quantum signatures (~5 kB each) and a long text
MAX_SIGNATURES = 100
SIGNATURE_PREFIX = "— "  # em dash, space


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """The signed-note key ID: SHA-256(name || 0x0A || alg || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid key name: non-empty, no Unicode space, no '+'."""
    if not name or "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise NoteError(f"invalid key name {name!r}")
    return name


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: the one canonical spelling of the bytes, nothing else."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(data).decode() != text:
        raise NoteError(f"{what} is not canonical base64")
    return data


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 section 4), as text."""
    return base64.b64encode(data).decode()


class Verifier(Protocol):
    """A key that may have signed a note: its name, ID, and a check of one signature."""

    name: str
    key_id: int

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the 4-byte key ID) signs the note ``text``.

        A verifier may raise NoteError instead of returning False, to give a more precise reason.
        """


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: int
    signature: bytes  # after the 4-byte key ID

    def line(self) -> str:
        """The signature line, newline included."""
        payload = self.key_id.to_bytes(4, "big") + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(payload)}\n"


class Ed25519Verifier:
    """An Ed25519 signed-note key (signature type 0x01)."""

    alg = ALG_ED25519

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = check_key_name(name)
        if len(public_key) != 32:
            raise NoteError(f"an Ed25519 public key has 32 bytes, got {len(public_key)}")
        self.public_key = bytes(public_key)
        self._key = Ed25519PublicKey.from_public_bytes(self.public_key)
        self.key_id = key_id(self.name, self.alg, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse ``<name>+<hex key ID>+<base64(type || key)>``, refusing any other type or mismatch."""
        name, public_key = parse_vkey(vkey, cls.alg)
        return cls(name, public_key)

    @property
    def vkey(self) -> str:
        """This key as a verifier key string."""
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([self.alg]) + self.public_key)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """See :class:`Verifier`."""
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


def parse_vkey(vkey: str, alg: int) -> tuple[str, bytes]:
    """Split a verifier key of signature type ``alg`` into (name, public key); check its ID."""
    parts = vkey.split("+", 2)  # base64 may itself hold '+'
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<key ID>+<key>")
    name, hex_id, encoded = parts
    check_key_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise NoteError("a verifier key's ID is 8 lowercase hex digits")
    material = _b64decode(encoded, "verifier key")
    if not material or material[0] != alg:
        raise NoteError(f"verifier key is not of signature type {alg:#04x}")
    if len(material) != 33:
        raise NoteError(f"verifier key of {len(material) - 1} bytes, an Ed25519 key has 32")
    if key_id(name, alg, material[1:]) != int(hex_id, 16):
        raise NoteError("verifier key ID does not match its name and key")
    return name, material[1:]


class Ed25519Signer:
    """Signs notes with an Ed25519 private key under a key name."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = check_key_name(name)
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Ed25519Verifier(name, public)
        self.key_id = self.verifier.key_id

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """A new random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` (the Go note format)."""
        parts = skey.split("+", 4)  # base64 may itself hold '+'
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<key ID>+<key>")
        seed = _b64decode(parts[4], "signer key")
        if len(seed) != 33 or seed[0] != ALG_ED25519:
            raise NoteError("signer key is not a 32-byte Ed25519 seed")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(seed[1:]))
        if not re.fullmatch(r"[0-9a-f]{8}", parts[3]) or int(parts[3], 16) != signer.key_id:
            raise NoteError("signer key ID does not match its name and key")
        return signer

    @property
    def skey(self) -> str:
        """This key as a signer key string (secret: store it like a password)."""
        seed = self._key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_ED25519]) + seed)}"

    def sign(self, text: bytes) -> Signature:
        """The signature line for note ``text``."""
        return Signature(self.name, self.key_id, self._key.sign(text))


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def check_text(text: str) -> bytes:
    """A note text as bytes: non-empty, newline-terminated, no control characters, unambiguous."""
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if text.endswith("\n\n") or text == "\n":
        raise NoteError("a note's text cannot end with a blank line: it would swallow the signatures")
    if _CONTROL.search(text):
        raise NoteError("a note may not contain control characters other than newline")
    return text.encode()


def sign_note(text: str, signers: Iterable[Ed25519Signer], keep: Iterable[Signature] = ()) -> bytes:
    """The signed note: ``text``, a blank line, the kept signatures then one per signer."""
    body = check_text(text)
    lines = [sig.line() for sig in keep]
    lines += [signer.sign(body).line() for signer in signers]
    if not lines:
        raise NoteError("a note needs at least one signature")
    return body + b"\n" + "".join(lines).encode()


@dataclass(frozen=True)
class Note:
    """A parsed note: its text and signature lines, nothing verified yet."""

    text: str
    signatures: tuple[Signature, ...]


def read_bounded(stream: BinaryIO, max_bytes: int = MAX_NOTE_BYTES) -> bytes:
    """Read a note from a stream, refusing it after ``max_bytes`` + 1 bytes, never reading it whole."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NoteError(f"note is larger than {max_bytes} bytes")
    return data


def parse_note(data: bytes, max_bytes: int = MAX_NOTE_BYTES) -> Note:
    """Parse a signed note strictly; raise NoteError with the first reason it is malformed."""
    if len(data) > max_bytes:
        raise NoteError(f"note is larger than {max_bytes} bytes")
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("note is not valid UTF-8") from exc
    if _CONTROL.search(message):
        raise NoteError("note contains control characters other than newline")
    if not message.endswith("\n"):
        raise NoteError("note does not end with a newline")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, lines = message[:split + 1], message[split + 2:].splitlines()
    if not lines:
        raise NoteError("note has no signatures")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"signature line {number} does not start with an em dash and a space")
        name, space, encoded = line[len(SIGNATURE_PREFIX):].rpartition(" ")
        if not space:
            raise NoteError(f"signature line {number} has no signature after the key name")
        check_key_name(name)
        payload = _b64decode(encoded, f"signature line {number}")
        if len(payload) < 5:
            raise NoteError(f"signature line {number} is too short")
        signatures.append(Signature(name, int.from_bytes(payload[:4], "big"), payload[4:]))
    return Note(text, tuple(signatures))


@dataclass(frozen=True)
class VerifiedNote:
    """A note with at least one signature by a trusted key; the others kept aside, unverified."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def open_note(data: bytes, verifiers: Iterable[Verifier], max_bytes: int = MAX_NOTE_BYTES) -> VerifiedNote:
    """Parse and verify a note against trusted keys; raise NoteError saying why it is refused."""
    note = parse_note(data, max_bytes)
    known: dict[tuple[str, int], list[Verifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    body = note.text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in note.signatures:
        keys = known.get((sig.name, sig.key_id), [])
        if not keys:
            if sig not in unverified:  # an identical line repeated says nothing new
                unverified.append(sig)
            continue
        label = f"{sig.name}+{sig.key_id:08x}"
        if len(keys) > 1:
            raise NoteError(f"ambiguous key {label}: configured more than once")
        if sig in verified:
            continue
        if any(other.name == sig.name and other.key_id == sig.key_id for other in verified):
            raise NoteError(f"two different signatures by key {label}")
        if not keys[0].verify(body, sig.signature):
            raise NoteError(f"invalid signature for key {label}")
        verified.append(sig)
    if not verified:
        raise NoteError("note has no signature by a trusted key")
    return VerifiedNote(note.text, tuple(verified), tuple(unverified))


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The checkpoint's note text."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    def tree_head(self) -> str:
        """The first three lines (origin, size, root hash): what witnesses check for consistency
        and what time-stamps cover, the same whatever extension lines a refresh adds."""
        return Checkpoint(self.origin, self.size, self.root_hash).text()

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a size and a root hash line")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin is empty")
        if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text) or int(size_text) >= 1 << 63:
            raise NoteError(f"checkpoint size {size_text!r} is not a decimal without leading zeros")
        root = _b64decode(root_text, "checkpoint root hash")
        if len(root) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash has {len(root)} bytes, not {HASH_SIZE}")
        if any(not line for line in extensions):
            raise NoteError("checkpoint extension lines cannot be empty")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Ed25519Signer) -> bytes:
    """The signed checkpoint note."""
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(data: bytes, origin: str, log_verifier: Verifier,
                    other_verifiers: Iterable[Verifier] = ()) -> tuple[Checkpoint, VerifiedNote]:
    """A checkpoint of the log ``origin``, which ``log_verifier``'s signature must be among."""
    note = open_note(data, [log_verifier, *other_verifiers])
    if not any(s.name == log_verifier.name and s.key_id == log_verifier.key_id for s in note.verified):
        raise NoteError(f"checkpoint is not signed by the log key {log_verifier.name}")
    checkpoint = Checkpoint.parse(note.text)
    if checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
    return checkpoint, note
