"""The audit log, without Flask: who added, approved, edited or deleted what, and when.

Every archivist and admin write records one entry with :func:`record`, in the same session
(and so the same transaction) as the change itself: a change that is rolled back leaves no
entry, and no entry exists without its change. Entries hold the actor (id and the name at the
time), the action, the target and a short JSON detail; never reader data, addresses, passwords
or token values (:func:`record` refuses detail keys that name a secret).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.models import AuditEntry, User
from accounts.users import AccountError

# Strings in a detail are cut to this, lists to MAX_DETAIL_ITEMS: the log says what changed,
# it is not a second copy of the archive.
MAX_DETAIL_CHARS = 300
MAX_DETAIL_ITEMS = 50
# A detail key containing one of these is a programming error: the log never holds a secret.
_SECRET_WORDS = ("password", "secret", "token_value", "plain", "hash")

# Target kinds, for the filters of the page and the API.
TARGET_KINDS = ("source", "fragment", "collection", "user", "token", "embed", "archive")


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (id and name), or a shell (no id, name ``cli:<os user>``)."""

    id: int | None
    name: str


def actor_of(user: User) -> Actor:
    """The actor for a signed-in user (their name as it is now)."""
    return Actor(user.id, user.name)


def cli_actor() -> Actor:
    """The actor for a command typed at a shell: the operating-system user running it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "unknown"
    return Actor(None, f"cli:{who}"[:120])


# The actor of a login attempt that did not sign anyone in: whoever typed at the form.
LOGIN_FORM = Actor(None, "login form")


def record_login(session: Session, attempted: str, user: User | None, succeeded: bool, key: bytes) -> None:
    """Audit one password login (the caller commits); never the password.

    A failure names the account when one has that name. A name no account has is kept only as
    a keyed digest: it is text chosen by whoever typed it (often a password typed in the wrong
    field), so it is never stored as a user's name, yet repeated guesses still stand out.
    """
    if succeeded:
        record(session, actor_of(user), "user.login", "user", user.id, {"result": "signed in"})
        return
    if user is None:
        digest = hmac.new(key, attempted.strip().encode("utf-8", "replace"), hashlib.sha256).hexdigest()
        record(session, LOGIN_FORM, "user.login-failed", "user", None,
               {"result": "no such account", "name_digest": digest[:16]})
        return
    record(session, LOGIN_FORM, "user.login-failed", "user", user.id,
           {"result": "refused (wrong password or account disabled)", "account": user.name})


def _short(value: object) -> object:
    """``value`` cut down to a size worth keeping in a log entry."""
    if isinstance(value, str):
        return value if len(value) <= MAX_DETAIL_CHARS else value[:MAX_DETAIL_CHARS] + "…"
    if isinstance(value, (list, tuple)):
        items = [_short(v) for v in list(value)[:MAX_DETAIL_ITEMS]]
        if len(value) > MAX_DETAIL_ITEMS:
            items.append(f"… {len(value) - MAX_DETAIL_ITEMS} more")
        return items
    if isinstance(value, Mapping):
        return {str(k): _short(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_kind: str,
    target_id: object = None,
    detail: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Add one entry to ``session``; it commits (or rolls back) with the change it records.

    ``action`` is ``<kind>.<verb>`` such as ``source.edit``; ``detail`` a small mapping of plain
    values. ValueError for a detail key that names a secret.
    """
    if detail:
        for key in detail:
            if any(word in str(key).lower() for word in _SECRET_WORDS):
                raise ValueError(f"audit detail key {key!r} would record a secret")
    entry = AuditEntry(
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        target_kind=target_kind,
        target_id=None if target_id is None else str(target_id)[:64],
        detail=json.dumps(_short(dict(detail)), ensure_ascii=False, sort_keys=True)
        if detail
        else None,
    )
    session.add(entry)
    return entry


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, object]:
    """The current values of ``fields`` of ``obj``, to compare with :func:`changes` later."""
    return {name: getattr(obj, name) for name in fields}


def changes(before: Mapping[str, object], obj: object) -> dict[str, list[object]]:
    """``{field: [old, new]}`` for each field of ``before`` whose value on ``obj`` differs."""
    return {
        name: [old, getattr(obj, name)]
        for name, old in before.items()
        if getattr(obj, name) != old
    }


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; every criterion given must hold."""

    actor: str | None = None
    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None


def audit_filter(
    actor: str | None = None,
    action: str | None = None,
    target_kind: str | None = None,
    target_id: str | None = None,
) -> AuditFilter:
    """Validate what a page, the API or the CLI sent into an AuditFilter; AccountError if bad."""
    values = {"actor": actor, "action": action, "target_kind": target_kind, "target_id": target_id}
    clean: dict[str, str | None] = {}
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise AccountError(f"{name} must be text")
        value = (value or "").strip() or None
        if value is not None and len(value) > _FILTER_LIMITS[name]:
            raise AccountError(f"{name} must be at most {_FILTER_LIMITS[name]} characters")
        clean[name] = value
    if clean["target_kind"] is not None and clean["target_kind"] not in TARGET_KINDS:
        raise AccountError(f"target_kind must be one of {', '.join(TARGET_KINDS)}")
    return AuditFilter(**clean)


_FILTER_LIMITS = {"actor": 120, "action": 40, "target_kind": 20, "target_id": 64}


def list_entries(
    session: Session, flt: AuditFilter, offset: int, limit: int
) -> tuple[int, list[AuditEntry]]:
    """The total number of entries matching ``flt`` and one page of them, newest first."""
    query = select(AuditEntry)
    if flt.actor:
        query = query.where(AuditEntry.actor_name == flt.actor)
    if flt.action:
        # "source" matches every source action; "source.edit" that one.
        if "." in flt.action:
            query = query.where(AuditEntry.action == flt.action)
        else:
            query = query.where(AuditEntry.action.startswith(flt.action + ".", autoescape=True))
    if flt.target_kind:
        query = query.where(AuditEntry.target_kind == flt.target_kind)
    if flt.target_id:
        query = query.where(AuditEntry.target_id == flt.target_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AuditEntry.id.desc()).offset(offset).limit(limit)
    ).all()
    return total, list(rows)


def entry_as_dict(entry: AuditEntry) -> dict:
    """The JSON shape of an entry (its detail parsed back into an object)."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": {"id": entry.actor_id, "name": entry.actor_name},
        "action": entry.action,
        "target": {"kind": entry.target_kind, "id": entry.target_id},
        "detail": json.loads(entry.detail) if entry.detail else None,
    }
