"""Key entries: how each role names and checks its keys, rotations and revocations signed and
verified, and the revocations a log holds, applied to WACZ signatures, packs and checkpoints.

Standalone like the verifier (no app imports). Each role names keys its own way:

- ``log``: a signed-note Ed25519 verifier key ``name+id+key``; key id: the note key ID (8 hex).
- ``witness``: a cosignature/v1 verifier key (type 0x04); key id as for ``log``.
- ``pack``: the raw Ed25519 public key in base64url (the JWK ``x``); key id: sha256 prefix (16 hex).
- ``wacz``: the ECDSA P-384 public key as base64 SPKI DER; key id: sha256 prefix (16 hex).

Signatures over a key entry use each role's own algorithm and encoding: Ed25519 (standard base64
for log and witness keys, base64url for pack keys) and ECDSA P-384 SHA-256 raw r||s in base64
for WACZ keys, always over :func:`provenance.entries.key_signing_message`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from provenance.cosignature import ALG_COSIGNATURE_V1
from provenance.entries import (
    REVOKE,
    ROTATE,
    EntryError,
    KeyEntry,
    KeySignatures,
    format_time,
    key_signing_message,
    parse_entry,
)
from provenance.errors import ProvenanceError
from provenance.merkle import TILE_WIDTH
from provenance.note import ALG_ED25519, Ed25519Verifier, key_id, parse_note, parse_vkey
from provenance.tiles import TileReader

_P384_HALF = 48  # bytes of r and of s in a raw P-384 signature
# A log holds few key entries: only entries mentioning the type are parsed at all.
_KEY_MARK = b'"type":"key"'
DEFAULT_MAX_SCAN = 1 << 22  # entries read at most when looking for key entries (~4M, 16k bundles)
MAX_DIGEST_BYTES = 64 * 1024  # a WACZ's datapackage-digest.json is a few hundred bytes
MAX_ENVELOPE_BYTES = 1 << 20  # a pack index or catalogue envelope


class KeyRefused(ProvenanceError):
    """A key, a key entry's signature or a use of a revoked key was refused."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, urlsafe: bool = False) -> bytes:
    """Strict base64 (or unpadded base64url) in its one canonical spelling; KeyRefused if not."""
    try:
        if urlsafe:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            canonical = _b64url(data)
        else:
            data = base64.b64decode(text, validate=True)
            canonical = _b64(data)
    except (binascii.Error, ValueError, TypeError):
        raise KeyRefused("not valid base64") from None
    if canonical != text:
        raise KeyRefused("not canonical base64")
    return data


# --- one role's public key --------------------------------------------------------------------


@dataclass(frozen=True)
class RoleKey:
    """A role's public key as the log names it: its text form, its id, and a signature check."""

    role: str
    text: str
    key_id: str
    _public: object = field(repr=False, compare=False)

    def verify(self, message: bytes, signature: str) -> bool:
        """Whether ``signature`` (this role's encoding) is this key's signature of ``message``."""
        try:
            if self.role == "wacz":
                raw = _unb64(signature)
                if len(raw) != 2 * _P384_HALF:
                    return False
                der = encode_dss_signature(int.from_bytes(raw[:_P384_HALF], "big"),
                                           int.from_bytes(raw[_P384_HALF:], "big"))
                self._public.verify(der, message, ec.ECDSA(hashes.SHA256()))
            else:
                raw = _unb64(signature, urlsafe=self.role == "pack")
                self._public.verify(raw, message)
        except (InvalidSignature, KeyRefused, ValueError):
            return False
        return True


def role_key(role: str, text: str) -> RoleKey:
    """Parse ``text`` as a public key of ``role``; KeyRefused saying why it is not one."""
    try:
        if role in ("log", "witness"):
            alg = ALG_ED25519 if role == "log" else ALG_COSIGNATURE_V1
            name, raw = parse_vkey(text, alg)
            return RoleKey(role, text, f"{key_id(name, alg, raw):08x}",
                           Ed25519PublicKey.from_public_bytes(raw))
        if role == "pack":
            raw = _unb64(text, urlsafe=True)
            if len(raw) != 32:
                raise KeyRefused("a pack key is 32 bytes of Ed25519 public key")
            return RoleKey(role, text, hashlib.sha256(raw).hexdigest()[:16],
                           Ed25519PublicKey.from_public_bytes(raw))
        if role == "wacz":
            der = _unb64(text)
            public = serialization.load_der_public_key(der)
            if not isinstance(public, ec.EllipticCurvePublicKey) or \
                    not isinstance(public.curve, ec.SECP384R1):
                raise KeyRefused("a WACZ key is an ECDSA P-384 public key")
            return RoleKey(role, text, hashlib.sha256(der).hexdigest()[:16], public)
    except ProvenanceError as exc:
        raise KeyRefused(f"not a {role} key: {exc}") from None
    except ValueError as exc:
        raise KeyRefused(f"not a {role} key: {exc}") from None
    raise KeyRefused(f"unknown key role {role!r}")


@dataclass(frozen=True)
class RoleSigner:
    """A role's private key: signs key entries in that role's encoding, knows its public key."""

    role: str
    private_key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)
    name: str | None = None  # the note key name, for log and witness keys

    @property
    def public(self) -> RoleKey:
        """The public key as the log names it."""
        key = self.private_key.public_key()
        if self.role in ("log", "witness"):
            alg = ALG_ED25519 if self.role == "log" else ALG_COSIGNATURE_V1
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            kid = key_id(self.name or "", alg, raw)
            return role_key(self.role, f"{self.name}+{kid:08x}+{_b64(bytes([alg]) + raw)}")
        if self.role == "pack":
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return role_key("pack", _b64url(raw))
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return role_key("wacz", _b64(der))

    def sign(self, message: bytes) -> str:
        """This key's signature of ``message``, encoded as its role encodes signatures."""
        if self.role == "wacz":
            r, s = decode_dss_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())))
            return _b64(r.to_bytes(_P384_HALF, "big") + s.to_bytes(_P384_HALF, "big"))
        raw = self.private_key.sign(message)
        return _b64url(raw) if self.role == "pack" else _b64(raw)


# --- making and checking key entries ----------------------------------------------------------


def _now() -> str:
    return format_time(datetime.now(UTC))


def rotation(old: RoleSigner, new: RoleSigner, at: str | None = None) -> KeyEntry:
    """The rotation from ``old`` to ``new`` (same role), signed by both: proof of holding each."""
    if old.role != new.role:
        raise KeyRefused("a rotation stays within one role")
    before, after = old.public, new.public
    entry = KeyEntry(old.role, ROTATE, before.key_id, before.text, after.key_id, after.text,
                     at or _now(), KeySignatures(old="x", new="x"))
    message = key_signing_message(entry)
    return replace(entry, signatures=KeySignatures(old=old.sign(message), new=new.sign(message)))


def revocation(role: str, key_id_: str, at: str, old: RoleSigner | None = None,
               log: RoleSigner | None = None) -> KeyEntry:
    """The revocation of key ``key_id_`` of ``role`` from ``at``: signed by the key itself when its
    file is at hand, else by the log key (and the entry says which)."""
    if (old is None) == (log is None):
        raise KeyRefused("a revocation is signed by the old key or by the log key")
    if old is not None:
        public = old.public
        if public.key_id != key_id_ or old.role != role:
            raise KeyRefused(f"the key file holds {old.role} key {public.key_id}, not {key_id_}")
        entry = KeyEntry(role, REVOKE, key_id_, public.text, None, None, at,
                         KeySignatures(old="x"))
        return replace(entry, signatures=KeySignatures(old=old.sign(key_signing_message(entry))))
    entry = KeyEntry(role, REVOKE, key_id_, None, None, None, at, KeySignatures(log="x"))
    return replace(entry, signatures=KeySignatures(log=log.sign(key_signing_message(entry))))


def verify_key_entry(entry: KeyEntry, log_keys: Iterable[RoleKey] = ()) -> None:
    """Check every signature ``entry`` carries, and that its keys match their ids; KeyRefused with
    the reason if not. A revocation signed by the log key needs that key among ``log_keys``."""
    message = key_signing_message(entry)
    label = f"{entry.action} of {entry.role} key {entry.key_id}"
    if entry.key is not None:
        old = role_key(entry.role, entry.key)
        if old.key_id != entry.key_id:
            raise KeyRefused(f"{label}: the key named is {old.key_id}, not {entry.key_id}")
        if entry.signatures.old is not None and not old.verify(message, entry.signatures.old):
            raise KeyRefused(f"{label}: the old key's signature does not verify")
    if entry.action == ROTATE:
        new = role_key(entry.role, entry.new_key)
        if new.key_id != entry.new_key_id:
            raise KeyRefused(f"{label}: the new key is {new.key_id}, not {entry.new_key_id}")
        if not new.verify(message, entry.signatures.new):
            raise KeyRefused(f"{label}: the new key's signature does not verify")
    if entry.signatures.log is not None:
        if not any(key.role == "log" and key.verify(message, entry.signatures.log)
                   for key in log_keys):
            raise KeyRefused(f"{label}: not signed by a known log key")


# --- what a log says about keys -----------------------------------------------------------------


@dataclass(frozen=True)
class Revoked:
    """A key's revocation as the log holds it: from when, and at which log index."""

    time: str
    index: int
    by: str  # "old" (the key itself) or "log"


@dataclass
class KeyHistory:
    """Every verified key entry of a log, in log order: revocations by (role, key id), rotations.
    Entries whose signatures fail are kept apart in ``refused`` (index, reason): never applied."""

    revoked: dict[tuple[str, str], Revoked] = field(default_factory=dict)
    rotations: list[tuple[int, KeyEntry]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    scanned: int = 0

    def add(self, index: int, entry: KeyEntry, log_keys: Iterable[RoleKey]) -> None:
        """Apply one key entry found at ``index`` once its signatures verify."""
        try:
            verify_key_entry(entry, log_keys)
        except KeyRefused as exc:
            self.refused.append((index, str(exc)))
            return
        if entry.action == REVOKE:
            known = self.revoked.get((entry.role, entry.key_id))
            # The earliest revocation is the one that counts: a later entry cannot un-revoke.
            if known is None or entry.time < known.time:
                by = "old" if entry.signatures.old is not None else "log"
                self.revoked[(entry.role, entry.key_id)] = Revoked(entry.time, index, by)
        else:
            self.rotations.append((index, entry))

    def revocation(self, role: str, key_id_: str) -> Revoked | None:
        """When ``key_id_`` of ``role`` was revoked, if it was."""
        return self.revoked.get((role, key_id_))

    def log_keys(self, pinned: RoleKey) -> list[RoleKey]:
        """``pinned`` and every log key it rotated to, following the chain in log order."""
        keys = [pinned]
        for _, entry in self.rotations:
            if entry.role == "log" and entry.key_id == keys[-1].key_id:
                keys.append(role_key("log", entry.new_key))
        return keys


def key_entries(entries: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, KeyEntry | str]]:
    """The key entries among ``entries`` (index, bytes): the parsed entry, or why it is refused."""
    for index, data in entries:
        if _KEY_MARK not in data:
            continue
        try:
            entry = parse_entry(data)
        except EntryError as exc:
            yield index, f"entry {index} is not a valid key entry: {exc}"
            continue
        if isinstance(entry, KeyEntry):
            yield index, entry


def read_history(entries: Iterable[tuple[int, bytes]], log_keys: Iterable[RoleKey] = ()
                 ) -> KeyHistory:
    """The key history of ``entries`` (index, bytes) in log order. A revocation signed by the log
    key counts when signed by one of ``log_keys`` or by a log key they rotated to before it."""
    history = KeyHistory()
    pinned = list(log_keys)
    for index, found in key_entries(entries):
        if isinstance(found, str):
            history.refused.append((index, found))
            continue
        chain = [key for first in pinned for key in history.log_keys(first)]
        history.add(index, found, chain)
    return history


def log_entries(reader: TileReader, max_entries: int = DEFAULT_MAX_SCAN
                ) -> Iterator[tuple[int, bytes]]:
    """Every entry of the tree ``reader`` reads, as (index, bytes), each bundle checked against
    its tile; KeyRefused rather than reading more than ``max_entries``."""
    if reader.size > max_entries:
        raise KeyRefused(f"the log holds {reader.size} entries, more than the {max_entries} this "
                         "scan reads (raise --keys-max-entries)")
    for bundle in range((reader.size + TILE_WIDTH - 1) // TILE_WIDTH):
        for offset, data in enumerate(reader.bundle(bundle)):
            yield bundle * TILE_WIDTH + offset, data


# --- refusing what a revoked key signed after its revocation -----------------------------------


def _parse_time(value: object) -> datetime | None:
    """An ISO 8601 / RFC 3339 time as an aware UTC datetime; None if it is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _revoked_before(revoked: Revoked, moment: datetime) -> bool:
    return datetime.strptime(revoked.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= moment


def wacz_refusals(path: str, history: KeyHistory) -> list[str]:
    """Why the WACZ at ``path`` is refused for its signing key's revocation (empty: it is not).

    The anonymous WACZ signature covers the hash only, not ``created``: a backdated ``created``
    is caught only by the WACZ's log proofs and timestamp tokens (docs/security.md).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("datapackage-digest.json")
            if info.file_size > MAX_DIGEST_BYTES:
                return ["datapackage-digest.json is too large"]
            with archive.open(info) as f:
                digest = json.loads(f.read(MAX_DIGEST_BYTES + 1))
    except KeyError:
        return ["the WACZ has no datapackage-digest.json"]
    except (OSError, zipfile.BadZipFile, ValueError, RecursionError) as exc:
        return [f"cannot read the WACZ: {exc}"]
    signed = digest.get("signedData") if isinstance(digest, dict) else None
    if not isinstance(signed, dict):
        return ["the WACZ is not signed"]
    if "domainCert" in signed and "publicKey" not in signed:
        # Domain mode: the key is the domain certificate's, not a WACZ key of the log's key
        # entries; its CA revokes it and its short life bounds a theft (docs/security.md).
        return []
    try:
        key = role_key("wacz", signed.get("publicKey"))
    except (KeyRefused, TypeError):
        return ["the WACZ's signing key is not an ECDSA P-384 key"]
    created = _parse_time(signed.get("created"))
    if created is None:
        return ["the WACZ signature's created time is missing or not a time"]
    revoked = history.revocation("wacz", key.key_id)
    if revoked is not None and _revoked_before(revoked, created):
        return [f"WACZ key {key.key_id} signed it at {signed['created']}, after its revocation "
                f"at {revoked.time} (log entry {revoked.index})"]
    return []


def pack_refusals(data: bytes, history: KeyHistory) -> list[str]:
    """Why a signed pack envelope (an index or the catalogue) is refused: one reason per signature
    by a pack key revoked at or before the pack's signed ``generated_at``."""
    if len(data) > MAX_ENVELOPE_BYTES:
        return [f"the pack envelope is larger than {MAX_ENVELOPE_BYTES} bytes"]
    try:
        envelope = json.loads(data)
        payload = json.loads(envelope["payload"])
        signatures = envelope["signatures"]
        issued = _parse_time(payload["generated_at"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return ["not a signed pack envelope (payload, signatures, generated_at)"]
    if issued is None or not isinstance(signatures, list):
        return ["not a signed pack envelope (payload, signatures, generated_at)"]
    reasons = []
    for signature in signatures:
        kid = signature.get("kid") if isinstance(signature, dict) else None
        revoked = history.revocation("pack", kid) if isinstance(kid, str) else None
        if revoked is not None and _revoked_before(revoked, issued):
            reasons.append(f"pack key {kid} signed it at {payload['generated_at']}, after its "
                           f"revocation at {revoked.time} (log entry {revoked.index})")
    return reasons


def checkpoint_refusals(data: bytes, history: KeyHistory, log_keys: Iterable[RoleKey]
                        ) -> list[str]:
    """Why a signed checkpoint is refused: every valid log-key signature on it is by a key revoked
    by an entry the checkpoint covers (its size is past the revocation's index)."""
    try:
        note = parse_note(data)
        size = int(note.text.split("\n")[1])
    except (ProvenanceError, ValueError, IndexError):
        return ["not a signed checkpoint"]
    body = note.text.encode()
    signers = []
    for key in log_keys:
        verifier = Ed25519Verifier.from_vkey(key.text)
        for sig in note.signatures:
            if (sig.name, sig.key_id) == (verifier.name, verifier.key_id) and \
                    verifier.verify(body, sig.signature):
                signers.append(key)
    if not signers:
        return ["the checkpoint carries no valid signature by a known log key"]
    live = [k for k in signers if (r := history.revocation("log", k.key_id)) is None
            or size <= r.index]
    if live:
        return []
    return [f"the checkpoint of size {size} is signed only by revoked log key(s) "
            + ", ".join(f"{k.key_id} (revoked at log entry "
                        f"{history.revocation('log', k.key_id).index})" for k in signers)]

