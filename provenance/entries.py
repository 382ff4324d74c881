"""What the log holds: canonical, versioned byte encodings of capture, curation-decision and key
entries.

An entry is canonical JSON (UTF-8, keys sorted, no spaces, no floats) carrying a ``type`` and a
version ``v``. Encoding one object has exactly one result, so anyone holding a capture can rebuild
its entry byte for byte and look for it in the log. The parser is strict: unknown types or
versions, extra or missing fields, non-canonical bytes, bad hex, times, URLs or part names, and
entries over the tile layout's 65,535 bytes are refused with a reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from provenance.errors import ProvenanceError
from provenance.tiles import MAX_ENTRY_SIZE

VERSION = 1
CAPTURE, DECISION, KEY = "capture", "decision", "key"
DECISIONS = ("approved", "rejected", "edited")
KEY_ROLES = ("log", "pack", "wacz", "witness")
ROTATE, REVOKE = "rotate", "revoke"
MAX_KEY_LENGTH = 1024  # a public key as text: a P-384 SPKI in base64 is 160 characters
MAX_URL_LENGTH = 2048  # the longest source URL the archive stores
MAX_NAME_LENGTH = 512  # the longest part name the archive stores

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FRAGMENT_ID = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{8}|[0-9a-f]{16}")  # a signed-note key ID, or a sha256 prefix
_B64_TEXT = re.compile(r"[A-Za-z0-9+/=_-]+")  # a signature in base64 or base64url
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# CIDv0 (base58btc multihash) or CIDv1 in base32 lower case, as IPFS returns them.
_CID = re.compile(r"Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{10,127}")
# A part's path inside its capture folder: relative, plain characters, no empty or dot segments.
_NAME_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_URL_CHARS = re.compile(r"[!-~]+")  # printable ASCII, no space: a URL as the archive normalises it


class EntryError(ProvenanceError):
    """Bytes offered as a log entry, or values offered to build one, were refused."""


# --- values ---------------------------------------------------------------------------------------


def check_sha256(value: object, what: str) -> str:
    """``value`` if it is a sha256 in 64 lowercase hex digits; EntryError naming ``what`` if not."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise EntryError(f"{what} is not a sha256 (64 lowercase hex digits)")
    return value


def check_url(value: object) -> str:
    """``value`` if it is an absolute http(s) URL of printable ASCII within the stored length."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        raise EntryError(f"the URL must be a string of 1 to {MAX_URL_LENGTH} characters")
    if not _URL_CHARS.fullmatch(value):
        raise EntryError("the URL holds spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise EntryError(f"the URL does not parse: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EntryError("the URL is not an absolute http(s) URL with a host")
    return value


def check_part_name(value: object) -> str:
    """``value`` if it is a relative path inside a capture folder (no '..', no absolute path)."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
        raise EntryError(f"a part name must be a string of 1 to {MAX_NAME_LENGTH} characters")
    if not all(_NAME_SEGMENT.fullmatch(segment) for segment in value.split("/")):
        raise EntryError(f"part name {value!r} is not a plain relative path")
    return value


def check_cid(value: object) -> str | None:
    """``value`` if it is None or an IPFS CID (v0, or v1 in base32)."""
    if value is not None and (not isinstance(value, str) or not _CID.fullmatch(value)):
        raise EntryError("a CID must be an IPFS CIDv0 or a base32 CIDv1")
    return value


def format_time(moment: datetime) -> str:
    """``moment`` in UTC, RFC 3339 to the second (``2026-12-07T19:51:40Z``); naive times refused."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise EntryError("a time must be a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_time(value: object) -> str:
    """``value`` if it is an RFC 3339 UTC time to the second that names a real moment."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise EntryError("a time must be RFC 3339 in UTC to the second (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise EntryError(f"{value} is not a real moment") from None
    return value


def archivist_key_id(secret: bytes, user_id: int) -> str:
    """The opaque key id of an archivist: HMAC-SHA256 of their user id under the log's secret.

    Without the secret nobody can tell which archivist it is, only that two decisions were made
    by the same one; the log never names a person.
    """
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise EntryError("the archivist key secret must be at least 16 bytes")
    return hmac.new(secret, str(int(user_id)).encode(), hashlib.sha256).hexdigest()


# --- entries --------------------------------------------------------------------------------------


def canonical_json(value: object) -> bytes:
    """The one encoding of ``value``: UTF-8 JSON, keys sorted, no insignificant space."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class PartRef:
    """One file of a capture as the log records it: its name in the folder, sha256 and CID."""

    name: str
    sha256: str
    cid: str | None = None

    def __post_init__(self) -> None:
        check_part_name(self.name)
        check_sha256(self.sha256, f"the sha256 of {self.name}")
        check_cid(self.cid)

    def to_json(self) -> dict:
        """The part as a JSON object."""
        return {"name": self.name, "sha256": self.sha256, "cid": self.cid}


@dataclass(frozen=True)
class CaptureFacts:
    """What a capture is, as plain values: its source URL, when it was fetched, its files."""

    url: str
    captured_at: datetime
    parts: tuple[PartRef, ...]


@dataclass(frozen=True)
class CaptureEntry:
    """A capture in the log: source URL, capture time, the manifest's sha256 and every part."""

    url: str
    time: str
    manifest: str
    parts: tuple[PartRef, ...]

    def __post_init__(self) -> None:
        check_url(self.url)
        check_time(self.time)
        check_sha256(self.manifest, "the manifest's sha256")
        names = [part.name for part in self.parts]
        if names != sorted(set(names)):
            raise EntryError("a capture entry's parts must be sorted by name, each name once")

    def to_json(self) -> dict:
        """The entry as a JSON object."""
        return {"type": CAPTURE, "v": VERSION, "url": self.url, "time": self.time,
                "manifest": self.manifest, "parts": [part.to_json() for part in self.parts]}

    def encode(self) -> bytes:
        """The entry's canonical bytes, as appended to the log."""
        return _bounded(canonical_json(self.to_json()))


@dataclass(frozen=True)
class DecisionEntry:
    """A curation decision in the log: which text of which capture, what was decided, when, by
    at most an opaque archivist key id."""

    fragment: str
    text_sha256: str
    manifest: str
    decision: str
    time: str
    archivist: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fragment, str) or not _FRAGMENT_ID.fullmatch(self.fragment):
            raise EntryError("a fragment id is 32 lowercase hex digits")
        check_sha256(self.text_sha256, "the text's sha256")
        check_sha256(self.manifest, "the capture's manifest sha256")
        if self.decision not in DECISIONS:
            raise EntryError(f"a decision is one of {', '.join(DECISIONS)}")
        check_time(self.time)
        if self.archivist is not None:
            check_sha256(self.archivist, "the archivist key id")

    def to_json(self) -> dict:
        """The entry as a JSON object."""
        return {"type": DECISION, "v": VERSION, "fragment": self.fragment,
                "text_sha256": self.text_sha256, "manifest": self.manifest,
                "decision": self.decision, "time": self.time, "archivist": self.archivist}

    def encode(self) -> bytes:
        """The entry's canonical bytes, as appended to the log."""
        return _bounded(canonical_json(self.to_json()))


@dataclass(frozen=True)
class KeySignatures:
    """A key entry's signatures over its body: by the old key, the new key (rotate), or the log key
    (a revocation made without the old key's file). Base64 or base64url text as each role signs."""

    old: str | None = None
    new: str | None = None
    log: str | None = None

    def __post_init__(self) -> None:
        for value in (self.old, self.new, self.log):
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 512
                                      or not _B64_TEXT.fullmatch(value)):
                raise EntryError("a key entry's signature is base64 text of at most 512 characters")

    def to_json(self) -> dict:
        """The signatures as a JSON object."""
        return {"old": self.old, "new": self.new, "log": self.log}


@dataclass(frozen=True)
class KeyEntry:
    """A key's rotation or revocation in the log: which role, which key (its id, and its public
    key when it signs), the new key (rotate), when it takes effect, and the signatures over
    :meth:`body`. A rotation is signed by both keys; a revocation by the old key or the log key.
    Whether the signatures verify is :mod:`provenance.keys`' business; the shape is checked here."""

    role: str
    action: str
    key_id: str
    key: str | None
    new_key_id: str | None
    new_key: str | None
    time: str
    signatures: KeySignatures = KeySignatures()

    def __post_init__(self) -> None:
        if self.role not in KEY_ROLES:
            raise EntryError(f"a key role is one of {', '.join(KEY_ROLES)}")
        if self.action not in (ROTATE, REVOKE):
            raise EntryError("a key action is rotate or revoke")
        # Log and witness keys are named by their 4-byte signed-note key ID, the others by a
        # sha256 prefix of 8 bytes.
        width = 8 if self.role in ("log", "witness") else 16
        for value, what in ((self.key_id, "the key id"), (self.new_key_id, "the new key id")):
            if value is not None and (not isinstance(value, str) or not _KEY_ID.fullmatch(value)
                                      or len(value) != width):
                raise EntryError(f"{what} of a {self.role} key is {width} lowercase hex digits")
        for value in (self.key, self.new_key):
            if value is not None and (not isinstance(value, str) or len(value) > MAX_KEY_LENGTH
                                      or not _URL_CHARS.fullmatch(value)):
                raise EntryError(f"a public key is printable text of 1 to {MAX_KEY_LENGTH} "
                                 "characters")
        if self.key_id is None:
            raise EntryError("a key entry names the key it rotates or revokes")
        check_time(self.time)
        if not isinstance(self.signatures, KeySignatures):
            raise EntryError("a key entry's signatures are old, new and log")
        sigs = self.signatures
        if self.action == ROTATE:
            if None in (self.key, self.new_key, self.new_key_id):
                raise EntryError("a rotation names the old key and the new key")
            if self.new_key_id == self.key_id:
                raise EntryError("a rotation's new key is the old key")
            if sigs.old is None or sigs.new is None or sigs.log is not None:
                raise EntryError("a rotation is signed by the old key and by the new key")
        else:
            if self.new_key is not None or self.new_key_id is not None or sigs.new is not None:
                raise EntryError("a revocation names no new key")
            if (sigs.old is None) == (sigs.log is None):
                raise EntryError("a revocation is signed by the old key or by the log key, "
                                 "one of them")
            if sigs.old is not None and self.key is None:
                raise EntryError("a revocation signed by the old key names that key")

    def body_json(self) -> dict:
        """The entry as a JSON object without its signatures: what the signatures cover."""
        return {"type": KEY, "v": VERSION, "role": self.role, "action": self.action,
                "key_id": self.key_id, "key": self.key, "new_key_id": self.new_key_id,
                "new_key": self.new_key, "time": self.time}

    def body(self) -> bytes:
        """The canonical bytes the signatures cover (see :func:`key_signing_message`)."""
        return canonical_json(self.body_json())

    def to_json(self) -> dict:
        """The entry as a JSON object."""
        return {**self.body_json(), "signatures": self.signatures.to_json()}

    def encode(self) -> bytes:
        """The entry's canonical bytes, as appended to the log."""
        return _bounded(canonical_json(self.to_json()))


# Signed before the body so that no other message a role's key signs (a checkpoint note, a pack
# payload, a WACZ hash string, a cosignature) can be read as a key entry, or the reverse.
KEY_SIGNING_CONTEXT = b"samizdat key entry v1\n"


def key_signing_message(entry: KeyEntry) -> bytes:
    """The bytes each signature of ``entry`` signs: a fixed context line, then its body."""
    return KEY_SIGNING_CONTEXT + entry.body()


Entry = CaptureEntry | DecisionEntry | KeyEntry


def _bounded(data: bytes) -> bytes:
    if len(data) > MAX_ENTRY_SIZE:
        raise EntryError(f"the entry has {len(data)} bytes, more than a log entry's "
                         f"{MAX_ENTRY_SIZE}")
    return data


def capture_entry(capture: CaptureFacts, manifest_sha256: str) -> CaptureEntry:
    """The log entry of ``capture`` whose manifest has sha256 ``manifest_sha256``."""
    parts = tuple(sorted(capture.parts, key=lambda part: part.name))
    return CaptureEntry(check_url(capture.url), format_time(capture.captured_at), manifest_sha256,
                        parts)


def text_sha256(text: str) -> str:
    """The sha256 of a fragment's text as UTF-8: what a decision entry vouches for."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decision_entry(fragment_id: str, text: str, manifest_sha256: str, decision: str,
                   decided_at: datetime, archivist: str | None = None) -> DecisionEntry:
    """The log entry of ``decision`` on ``fragment_id``, reading ``text``, at ``decided_at``."""
    return DecisionEntry(fragment_id, text_sha256(text), manifest_sha256, decision,
                         format_time(decided_at), archivist)


# --- parsing --------------------------------------------------------------------------------------


def _no_floats(text: str) -> float:
    raise EntryError(f"entries hold no floating-point numbers ({text})")


def _unique(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise EntryError("an object in the entry repeats a key")
    return dict(pairs)


def _fields(obj: object, expected: set[str], what: str) -> dict:
    if not isinstance(obj, dict):
        raise EntryError(f"{what} is not a JSON object")
    if set(obj) != expected:
        extra, missing = set(obj) - expected, expected - set(obj)
        detail = "; ".join(filter(None, [extra and f"extra {sorted(extra)}",
                                         missing and f"missing {sorted(missing)}"]))
        raise EntryError(f"{what} has the wrong fields: {detail}")
    return obj


_CAPTURE_FIELDS = {"type", "v", "url", "time", "manifest", "parts"}
_PART_FIELDS = {"name", "sha256", "cid"}
_DECISION_FIELDS = {"type", "v", "fragment", "text_sha256", "manifest", "decision", "time",
                    "archivist"}
_KEY_FIELDS = {"type", "v", "role", "action", "key_id", "key", "new_key_id", "new_key", "time",
               "signatures"}
_KEY_SIGNATURE_FIELDS = {"old", "new", "log"}


def parse_entry(data: bytes) -> Entry:
    """The entry ``data`` encodes; EntryError for anything but a known entry's canonical bytes."""
    if not isinstance(data, bytes | bytearray):
        raise EntryError("an entry is bytes")
    _bounded(data)  # before parsing: an oversized entry is never read whole
    try:
        text = bytes(data).decode("utf-8")
        obj = json.loads(text, parse_float=_no_floats, parse_constant=_no_floats,
                         object_pairs_hook=_unique)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EntryError(f"the entry is not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EntryError("the entry is not a JSON object")
    kind, version = obj.get("type"), obj.get("v")
    if kind not in (CAPTURE, DECISION, KEY):
        raise EntryError(f"unknown entry type {kind!r}")
    if type(version) is not int or version != VERSION:
        raise EntryError(f"unknown {kind} entry version {version!r}")
    entry: Entry
    if kind == CAPTURE:
        obj = _fields(obj, _CAPTURE_FIELDS, "the capture entry")
        if not isinstance(obj["parts"], list):
            raise EntryError("the capture entry's parts are not a list")
        parts = tuple(
            PartRef(**_fields(part, _PART_FIELDS, "a part")) for part in obj["parts"]
        )
        entry = CaptureEntry(obj["url"], obj["time"], obj["manifest"], parts)
    elif kind == KEY:
        obj = _fields(obj, _KEY_FIELDS, "the key entry")
        signatures = KeySignatures(**_fields(obj["signatures"], _KEY_SIGNATURE_FIELDS,
                                             "the key entry's signatures"))
        entry = KeyEntry(obj["role"], obj["action"], obj["key_id"], obj["key"], obj["new_key_id"],
                         obj["new_key"], obj["time"], signatures)
    else:
        obj = _fields(obj, _DECISION_FIELDS, "the decision entry")
        entry = DecisionEntry(obj["fragment"], obj["text_sha256"], obj["manifest"], obj["decision"],
                              obj["time"], obj["archivist"])
    if entry.encode() != data:
        raise EntryError("the entry is not in canonical form (sorted keys, no spaces, UTF-8 as is)")
    return entry
