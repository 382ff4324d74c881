"""What a checkpoint's extension lines say, and how fresh a checkpoint is under a witness policy.

C2SP tlog-checkpoint allows extension lines after the root hash; the log signs them, and a
cosignature/v1 covers them too while stating nothing about them (a witness checks only the first
three lines). The app's log writes, in this order::

    time <unix seconds>                          when the log signed this checkpoint
    revoked <role> <key id> <unix seconds>       a revoked pack or WACZ key, from when

The ``time`` line makes freshness defined for a log without witnesses; the ``revoked`` lines name
every pack and WACZ key a key entry covered by this checkpoint revokes (the earliest revocation of
each), so a reader holding only a recent checkpoint learns them without reading the log. A
checkpoint for the same size and root with a newer ``time`` is the same tree, re-signed: not a
fork. Unknown extension lines are ignored. Standalone (no app imports), like the verifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from provenance.cosignature import CosignatureVerifier, WitnessPolicy
from provenance.errors import NoteError
from provenance.note import Checkpoint, Verifier

REVOKED_ROLES = ("pack", "wacz")
_TIME = re.compile(r"time (0|[1-9][0-9]{0,11})")
_REVOKED = re.compile(r"revoked (pack|wacz) ([0-9a-f]{16}) (0|[1-9][0-9]{0,11})")


@dataclass(frozen=True)
class CheckpointFacts:
    """What the extension lines of one checkpoint say: its signing time and revoked keys."""

    time: int | None = None
    revoked: dict[tuple[str, str], int] = field(default_factory=dict)  # (role, key id) → time

    def revocation(self, role: str, key_id: str) -> int | None:
        """When ``key_id`` of ``role`` is revoked from, if this checkpoint names it."""
        return self.revoked.get((role, key_id))


def extension_lines(signed_at: int, revoked: Iterable[tuple[str, str, int]] = ()) -> tuple[str, ...]:
    """The extension lines for a checkpoint signed at ``signed_at`` naming the ``revoked``
    (role, key id, unix time) keys, sorted by role and key id."""
    lines = [f"time {int(signed_at)}"]
    for role, key_id, at in sorted(set(revoked)):
        line = f"revoked {role} {key_id} {int(at)}"
        if not _REVOKED.fullmatch(line):
            raise NoteError(f"cannot name {role} key {key_id!r} as revoked in a checkpoint")
        lines.append(line)
    return tuple(lines)


def checkpoint_facts(checkpoint: Checkpoint) -> CheckpointFacts:
    """The facts ``checkpoint``'s extension lines state; NoteError for a second ``time`` line."""
    time: int | None = None
    revoked: dict[tuple[str, str], int] = {}
    for line in checkpoint.extensions:
        if found := _TIME.fullmatch(line):
            if time is not None:
                raise NoteError("a checkpoint has one time line")
            time = int(found.group(1))
        elif found := _REVOKED.fullmatch(line):
            key = (found.group(1), found.group(2))
            at = int(found.group(3))
            revoked[key] = min(at, revoked.get(key, at))
    return CheckpointFacts(time, revoked)


def policy_time(checkpoint: Checkpoint, cosigners: dict[str, int], quorum: int) -> int | None:
    """The time a checkpoint is fresh as of under a policy needing ``quorum`` cosignatures: the
    ``quorum``-th newest of the policy's valid cosignatures (so that the quorum is met by
    cosignatures that young), or without witnesses the log's own ``time`` line; None if neither."""
    if quorum > 0:
        times = sorted(cosigners.values(), reverse=True)
        return times[quorum - 1] if len(times) >= quorum else None
    return checkpoint_facts(checkpoint).time


def note_policy_time(note: bytes, origin: str, log_verifier: Verifier, witnesses: Sequence[str],
                     quorum: int) -> int | None:
    """:func:`policy_time` of a signed checkpoint note under the policy of ``witnesses`` (verifier
    keys) and ``quorum``; NoteError or PolicyError when the note or the keys do not verify."""
    policy = WitnessPolicy(tuple(CosignatureVerifier.from_vkey(v) for v in witnesses), quorum)
    cosigned = policy.cosigners(note, origin, log_verifier)
    return policy_time(cosigned.checkpoint, cosigned.cosigners, quorum)


def format_unix(seconds: int | float) -> str:
    """A unix time as RFC 3339 UTC to the second, for messages."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_time(rfc3339: str) -> int:
    """A key entry's RFC 3339 UTC time (``2026-12-07T21:44:05Z``) as unix seconds."""
    return int(datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
