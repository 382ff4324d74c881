"""The verifier's widget-pack check: a pack index or shard, as embed.js reads it, proven against
the log without our server (no app imports: the standard library and ``cryptography`` only).

An index (``packs/<pack>/index.json``) must carry a signature by the pack key, and the signed log
checkpoint it names; each of its shards (``packs/shards/<sha256>.json`` beside it) must match its
hash, and each fragment must carry its own approval (the decision entry naming its id and the
sha256 of its text) with an inclusion proof leading to that checkpoint's root. With ``--log``,
the checkpoint must also be consistent with the log's current one, and each entry be the log's own
at its index. A bare shard has no checkpoint: its fragments are checked against ``--log`` only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provenance import merkle
from provenance.entries import DecisionEntry, parse_entry, text_sha256
from provenance.cosignature import WitnessPolicy
from provenance.errors import NoteError, ProvenanceError
from provenance.freshness import checkpoint_facts, format_unix, policy_time
from provenance.log import LogClient
from provenance.note import Checkpoint, Verifier, open_checkpoint

# Every pack file a page view reads is at most this large (embed/packs.py MAX_REQUEST_BYTES).
MAX_PACK_BYTES = 256 * 1024
PACK_FORMAT = "samizdat-pack/1"
PUBLIC_DECISIONS = ("approved", "edited")


class PackError(ProvenanceError):
    """A pack file was refused: unreadable, too large, not a pack, or not what it claims."""


def read_location(location: str) -> bytes:
    """A pack file from an http(s) URL or a path, refused past MAX_PACK_BYTES (read + 1 byte)."""
    try:
        if location.startswith(("http://", "https://")):
            request = urllib.request.Request(location, headers={"Accept-Encoding": "identity"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                data = response.read(MAX_PACK_BYTES + 1)
        else:
            with open(location, "rb") as f:
                data = f.read(MAX_PACK_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PackError(f"cannot read {location}: {getattr(exc, 'reason', None) or exc}") from None
    if len(data) > MAX_PACK_BYTES:
        raise PackError(f"{location} is larger than {MAX_PACK_BYTES} bytes")
    return data


def _json(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise PackError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise PackError(f"{what} is not a JSON object")
    return value


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise PackError(f"{what} is not a string")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4),
                                validate=True)
    except (binascii.Error, ValueError):
        raise PackError(f"{what} is not base64") from None


def open_index(data: bytes, pack_key: str) -> dict:
    """The payload of a signed index envelope, once a signature by ``pack_key`` (base64url, the
    ``x`` of packs/key.json) verifies; PackError saying why not."""
    envelope = _json(data, "the index")
    payload, signatures = envelope.get("payload"), envelope.get("signatures")
    if not isinstance(payload, str) or not isinstance(signatures, list):
        raise PackError("the index is not a signed envelope (payload, signatures)")
    try:
        key = Ed25519PublicKey.from_public_bytes(_b64(pack_key, "the pack key"))
    except ValueError:
        raise PackError("the pack key is not an Ed25519 public key") from None
    for signature in signatures:
        if isinstance(signature, dict) and signature.get("alg") == "Ed25519":
            try:
                key.verify(_b64(signature.get("signature"), "a signature"), payload.encode())
            except (InvalidSignature, PackError):
                continue
            index = _json(payload.encode(), "the index payload")
            if index.get("format") != PACK_FORMAT:
                raise PackError(f"the index is not of the format {PACK_FORMAT}")
            return index
    raise PackError("no signature by the pack key verifies")


def fragments_of(data: bytes) -> list[dict]:
    """The fragments of a shard."""
    shard = _json(data, "the shard")
    fragments = shard.get("fragments")
    if shard.get("format") != PACK_FORMAT or not isinstance(fragments, list):
        raise PackError(f"not a shard of the format {PACK_FORMAT}")
    if not all(isinstance(f, dict) for f in fragments):
        raise PackError("a shard's fragments are JSON objects")
    return fragments


def logged_entry(fragment: dict) -> tuple[int, bytes, list[bytes]]:
    """The fragment's carried (log index, decision entry, proof), the entry checked to approve
    exactly this fragment's id and text; PackError saying why not."""
    carried = fragment.get("log")
    if not isinstance(carried, dict):
        raise PackError("it carries no log entry: not in the log")
    index, entry, proof = carried.get("index"), carried.get("entry"), carried.get("proof")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0 or not isinstance(entry, str) \
            or not isinstance(proof, list):
        raise PackError("its log entry is malformed")
    data = entry.encode()
    decision = parse_entry(data)
    if not isinstance(decision, DecisionEntry) or decision.decision not in PUBLIC_DECISIONS:
        raise PackError("its log entry is not an approval")
    if decision.fragment != fragment.get("id"):
        raise PackError(f"its log entry approves another fragment ({decision.fragment})")
    if not isinstance(fragment.get("text"), str) or text_sha256(fragment["text"]) != decision.text_sha256:
        raise PackError("its text is not the text its logged approval names")
    return index, data, [_b64(h, "a proof hash") for h in proof]


def check_fragments(fragments: list[dict], checkpoint: Checkpoint | None,
                    client: LogClient | None, current: Checkpoint | None, where: str) -> Iterator[tuple[bool, str, str]]:
    """(ok, what, detail) for each fragment: its approval, its proof under ``checkpoint`` (if any)
    and, with a ``client``, the log's own entry at its index under ``current``."""
    for number, fragment in enumerate(fragments):
        what = f"fragment {fragment.get('id', number)} ({where})"
        try:
            index, entry, proof = logged_entry(fragment)
            if checkpoint is not None:
                merkle.verify_inclusion(merkle.leaf_hash(entry), index, checkpoint.size, proof,
                                        checkpoint.root_hash)
            if client is not None and current is not None:
                if client.prove_inclusion(current, index).entry != entry:
                    raise PackError(f"the log's entry {index} is another one")
        except ProvenanceError as exc:
            yield False, what, str(exc)
            continue
        yield True, what, f"approval is log entry {index}"


def _sibling(location: str, index_rel: str, rel: str) -> str:
    """The location of ``rel`` under the packs/ root of an index found at ``location``."""
    if location.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(location)
        if not parts.path.endswith("/" + index_rel):
            raise PackError(f"{location} is not at packs/{index_rel}, where its pack says")
        root = parts.path[:-len(index_rel)]
        return urllib.parse.urlunsplit(parts._replace(path=root + rel, query="", fragment=""))
    path = Path(location)
    depth = len(index_rel.split("/"))
    if path.as_posix().split("/")[-depth:] != index_rel.split("/"):
        raise PackError(f"{location} is not at packs/{index_rel}, where its pack says")
    return str(path.parents[depth - 1] / rel)


def _hashed(location: str, sha256: object) -> bytes:
    if not isinstance(sha256, str) or len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise PackError("a listed sha256 is not 64 hex digits")
    data = read_location(location)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PackError(f"{location} does not match its sha256: altered")
    return data


class PackMemory(Protocol):
    """Where the largest pack checkpoint accepted of each origin is kept (verify.py's memory)."""

    def recall(self, origin: str) -> tuple[Checkpoint, str] | None: ...

    def remember(self, checkpoint: Checkpoint) -> None: ...


def pack_key_id(pack_key: str) -> str:
    """A pack key's id as the log names it: the sha256 prefix of its raw bytes (16 hex)."""
    return hashlib.sha256(_b64(pack_key, "the pack key")).hexdigest()[:16]


def _parse_iso(value: object) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def checkpoint_rules(index: dict, checkpoint: Checkpoint, cosigners: dict[str, int], quorum: int,
                     pack_key: str, *, max_age: float | None = None, now: float | None = None,
                     memory: PackMemory | None = None) -> Iterator[tuple[bool, str, str]]:
    """The widget's three rules for an index's checkpoint (embed.js ``admit``), as (ok, what,
    detail): the pack key not revoked when the index or the checkpoint was made, the checkpoint
    younger than ``max_age`` seconds at ``now`` (None: not checked), and never smaller than
    the largest one ``memory`` holds (a rollback) nor another root at its size (a fork)."""
    now = time.time() if now is None else now
    try:
        facts = checkpoint_facts(checkpoint)
    except NoteError as exc:
        yield False, "checkpoint extension lines", str(exc)
        return
    kid = pack_key_id(pack_key)
    revoked = facts.revocation("pack", kid)
    issued = _parse_iso(index.get("generated_at"))
    if revoked is not None and ((issued is not None and revoked <= issued)
                                or (facts.time is not None and revoked <= facts.time)):
        yield False, "pack key revocation", (f"the index is signed by pack key {kid}, which the "
                                             f"checkpoint names revoked from {format_unix(revoked)}")
    else:
        yield True, "pack key revocation", (f"the checkpoint names pack key {kid} revoked from "
                                            f"{format_unix(revoked)}, after the index was made"
                                            if revoked is not None else
                                            f"the checkpoint does not name pack key {kid} revoked")
    fresh = policy_time(checkpoint, cosigners, quorum)
    source = f"the {quorum}th newest cosignature" if quorum > 1 else \
        "the newest cosignature" if quorum else "the log's time line"
    if max_age is not None:
        if fresh is None:
            yield False, "checkpoint age", f"the checkpoint has no time ({source}): its age is unknown"
        elif now - fresh > max_age:
            yield False, "checkpoint age", (f"{source} is from {format_unix(fresh)}, {int(now - fresh)} s "
                                            f"before {format_unix(now)}: older than the maximum age "
                                            f"of {int(max_age)} s")
        else:
            yield True, "checkpoint age", f"{source} is from {format_unix(fresh)}, {int(now - fresh)} s old"
    if memory is not None:
        try:
            seen = memory.recall(checkpoint.origin)
        except ProvenanceError as exc:
            yield False, "pack checkpoint seen before", str(exc)
            return
        if seen is not None and seen[0].size > checkpoint.size:
            yield False, "pack checkpoint rollback", (f"size {checkpoint.size} is smaller than the "
                                                      f"size {seen[0].size} accepted on {seen[1]}: rolled back")
            return
        if seen is not None and seen[0].size == checkpoint.size and seen[0].root_hash != checkpoint.root_hash:
            yield False, "pack checkpoint fork", (f"another root than the one accepted at size "
                                                  f"{checkpoint.size} on {seen[1]}: a fork")
            return
        if seen is None or checkpoint.size > seen[0].size:
            try:
                memory.remember(checkpoint)
            except OSError as exc:
                yield False, "remembering the pack checkpoint", str(exc.strerror or exc)
                return
        yield True, "pack checkpoint rollback", (f"not smaller than the size {seen[0].size} accepted "
                                                 f"before" if seen else "the first pack checkpoint seen")


def verify_pack(location: str, pack_key: str | None, log_verifier: Verifier,
                client: LogClient | None = None, *, policy: WitnessPolicy | None = None,
                max_age: float | None = None, now: float | None = None,
                memory: PackMemory | None = None) -> Iterator[tuple[bool, str, str]]:
    """Every check of a widget pack index or shard at ``location``, as (ok, what, detail); an
    index's checkpoint must meet ``policy`` and the widget's rules (:func:`checkpoint_rules`)."""
    try:
        data = read_location(location)
        is_index = "payload" in _json(data, "the pack file")
    except PackError as exc:
        yield False, "pack", str(exc)
        return
    current = None
    if client is not None:
        try:
            current = client.checkpoint()
        except ProvenanceError as exc:
            yield False, "the log's checkpoint", str(exc)
            return
        yield True, f"the log's checkpoint of {current.origin}", f"size {current.size}, signature verified"
    if not is_index:
        try:
            fragments = fragments_of(data)
        except PackError as exc:
            yield False, "shard", str(exc)
            return
        if client is None:
            yield False, "shard", "a shard names no checkpoint: give --log to check it against the log"
            return
        yield True, f"shard of {len(fragments)} fragments", ""
        yield from check_fragments(fragments, None, client, current, "shard")
        return
    try:
        if not pack_key:
            raise PackError("give --pack-key (the x of packs/key.json) to check the index's signature")
        index = open_index(data, pack_key)
    except PackError as exc:
        yield False, "pack signature", str(exc)
        return
    yield True, f"pack signature of {index.get('pack')}", f"serial {index.get('serial')}, expires {index.get('expires')}"
    try:
        note = index.get("checkpoint")
        if not isinstance(note, str):
            raise PackError("the index names no log checkpoint: its fragments are not proven")
        if policy is None:
            checkpoint, _ = open_checkpoint(note.encode(), log_verifier.name, log_verifier)
            cosigners: dict[str, int] = {}
        else:
            cosigned = policy.cosigners(note.encode(), log_verifier.name, log_verifier)
            checkpoint, cosigners = cosigned.checkpoint, cosigned.cosigners
            policy.check(cosigned)
    except ProvenanceError as exc:
        yield False, "pack checkpoint", str(exc)
        return
    yield True, f"pack checkpoint of {checkpoint.origin}", (
        f"size {checkpoint.size}, signature verified" + (
            f", {len(cosigners)} of {len(policy.witnesses)} witnesses cosigned, {policy.threshold} "
            "needed" if policy is not None else ""))
    rules = list(checkpoint_rules(index, checkpoint, cosigners,
                                  policy.threshold if policy is not None else 0, pack_key,
                                  max_age=max_age, now=now, memory=memory))
    yield from rules
    if not all(ok for ok, _, _ in rules):
        return
    if client is not None and current is not None:
        try:
            client.prove_consistency(checkpoint, current)
        except ProvenanceError as exc:
            yield False, "pack checkpoint consistency with the log", str(exc)
            return
        yield True, "pack checkpoint consistent with the log's", ""
    shards = index.get("shards")
    try:
        pack = index.get("pack")
        if not isinstance(pack, str):
            raise PackError("the index names no pack")
        index_rel = f"{pack}/index.json"
        if isinstance(index.get("tables"), list):
            shards = []
            for table in index["tables"]:
                sha = table.get("sha256") if isinstance(table, dict) else None
                listed = _json(_hashed(_sibling(location, index_rel, f"shards/{sha}.json"), sha), "a table")
                if not isinstance(listed.get("shards"), list):
                    raise PackError(f"table {sha} lists no shards")
                shards += listed["shards"]
        if not isinstance(shards, list):
            raise PackError("the index lists no shards")
    except PackError as exc:
        yield False, "pack shards", str(exc)
        return
    for shard in shards:
        sha = shard.get("sha256") if isinstance(shard, dict) else None
        try:
            fragments = fragments_of(_hashed(_sibling(location, index_rel, f"shards/{sha}.json"), sha))
        except PackError as exc:
            yield False, f"shard {sha}", str(exc)
            continue
        yield True, f"shard {sha}", f"{len(fragments)} fragments, sha256 matches"
        yield from check_fragments(fragments, checkpoint, client, current, f"shard {str(sha)[:12]}")
