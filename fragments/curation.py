"""Curation: archivists approve, reject, edit and tag fragments, and manage collections.

One place for these decisions, used alike by the JSON API, the review page and the CLI. Callers
commit; every function checks its whole input before changing anything, so a bad id in a list
leaves the database as it was. An edited text goes back to review, and by default an archivist
never approves their own edit (Settings.fragment_self_approve allows it for one-person archives).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, not_, or_, select, update
from sqlalchemy.orm import Session

from accounts.audit import Actor, record
from fragments.models import (
    APPROVED,
    PENDING,
    REJECTED,
    STATUSES,
    Collection,
    Fragment,
    FragmentTag,
    version_of,
)
from samizdat.db import utcnow
from samizdat.errors import SamizdatError
from samizdat.text import unstorable_reason

MAX_TEXT_CHARS = 1000
MAX_TAG_CHARS = 64
MAX_COLLECTION_CHARS = 100
DECISIONS = {"approve": APPROVED, "reject": REJECTED}
# The audit log's verb for each status a decision sets.
_DECISION_VERBS = {APPROVED: "approve", REJECTED: "reject"}
HEX_DIGITS = frozenset("0123456789abcdef")


class CurationError(SamizdatError):
    """A curation request that cannot be carried out; ``status`` is the HTTP status it maps to."""

    status = 400


class NotFoundError(CurationError):
    """A fragment or collection that does not exist."""

    status = 404


class ConflictError(CurationError):
    """Something that already exists (a collection of the same name)."""

    status = 409


class SelfApprovalError(CurationError):
    """An archivist tried to approve their own edit; a second archivist must check it."""

    status = 403


@dataclass(frozen=True)
class Reviewer:
    """Who decides, by name, and whether they may approve text they edited themselves."""

    name: str
    may_approve_own_edits: bool = False
    # A reviewer who is no one in particular (the shell without --as) could be any editor.
    anonymous: bool = False


@dataclass(frozen=True)
class Decision:
    """What a review changed, and the reviewer's own edits it left pending for someone else."""

    status: str
    changed: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class FragmentFilter:
    """Which fragments a listing shows; None means any."""

    status: str | None = None
    collection: str | None = None
    tag: str | None = None
    q: str | None = None


def checked_text(value: object, what: str) -> str:
    """``value`` if it is a string a database can store; CurationError naming ``what`` if not.

    The one check for every free text entering curation (PostgreSQL refuses NUL characters, and
    no driver encodes a lone surrogate); samizdat.text says what cannot be stored.
    """
    if not isinstance(value, str):
        raise CurationError(f"{what} must be a string")
    reason = unstorable_reason(value)
    if reason:
        raise CurationError(f"{what} {reason}")
    return value


def is_fragment_id(value: object) -> bool:
    """Whether ``value`` could be a fragment id (fragments.split.fragment_id: 32 hex digits)."""
    return isinstance(value, str) and len(value) == 32 and all(c in HEX_DIGITS for c in value)


def get_fragment(session: Session, fragment_id: str) -> Fragment:
    """The fragment with ``fragment_id``; NotFoundError when there is none."""
    fragment = session.get(Fragment, fragment_id) if is_fragment_id(fragment_id) else None
    if fragment is None:
        raise NotFoundError(f"no fragment with id {fragment_id}")
    return fragment


def _filtered(query, flt: FragmentFilter):
    """Apply ``flt`` to a select over Fragment."""
    for what, value in (("collection", flt.collection), ("tag", flt.tag), ("q", flt.q)):
        if value is not None:
            checked_text(value, what)
    if flt.status:
        if flt.status not in STATUSES:
            raise CurationError(f"status must be one of {', '.join(STATUSES)}")
        query = query.where(Fragment.status == flt.status)
    if flt.collection:
        query = query.where(Fragment.collection == flt.collection)
    if flt.tag:
        query = query.where(
            Fragment.id.in_(select(FragmentTag.fragment_id).where(FragmentTag.tag == normalize_tag(flt.tag)))
        )
    if flt.q:
        # autoescape: an archivist searching for "100%" means the characters, not a wildcard.
        query = query.where(Fragment.text.icontains(flt.q, autoescape=True))
    return query


def list_fragments(
    session: Session, flt: FragmentFilter, offset: int = 0, limit: int = 50
) -> tuple[int, list[Fragment]]:
    """The total matching ``flt`` and one page of them, newest capture first, in page order."""
    total = session.scalar(_filtered(select(func.count()).select_from(Fragment), flt)) or 0
    items = list(
        session.scalars(
            _filtered(select(Fragment), flt)
            .order_by(Fragment.fetched_at.desc(), Fragment.capture_id, Fragment.position)
            .offset(offset)
            .limit(limit)
        )
    )
    return total, items


def decision_status(action: object) -> str:
    """The status an action ("approve" or "reject") sets; CurationError for anything else."""
    if not isinstance(action, str) or action not in DECISIONS:
        raise CurationError("action must be 'approve' or 'reject'")
    return DECISIONS[action]


def _may_approve(reviewer: Reviewer) -> ColumnElement[bool] | None:
    """SQL for "``reviewer`` may approve this fragment", or None when they may approve any.

    An edit is never approved by its own author: a stolen login must not be enough to publish.
    Never NULL, so its negation is exact.
    """
    if reviewer.may_approve_own_edits:
        return None
    if reviewer.anonymous:
        return Fragment.original_text.is_(None)
    return or_(
        Fragment.original_text.is_(None),
        Fragment.edited_by.is_(None),
        Fragment.edited_by != reviewer.name,
    )


def _own_edits(session: Session, query, status: str, reviewer: Reviewer) -> list[str]:
    """Ids among ``query``'s fragments that ``reviewer`` may not approve: their own edits."""
    allowed = _may_approve(reviewer)
    if status != APPROVED or allowed is None:
        return []
    return list(session.scalars(query.where(not_(allowed)).order_by(Fragment.id)))


def _refusal(fragment_id: str, reviewer: Reviewer) -> SelfApprovalError:
    """Why ``reviewer`` may not approve the edited fragment ``fragment_id``."""
    if reviewer.anonymous:
        return SelfApprovalError(
            f"fragment {fragment_id} was edited; only a named archivist may approve an edit"
        )
    return SelfApprovalError(
        f"you edited fragment {fragment_id}; another archivist must approve your edit"
    )


def _decide(session: Session, where: list, status: str, reviewer: Reviewer) -> int:
    """Set ``status`` on the fragments matching ``where``, recording who decided and when."""
    allowed = _may_approve(reviewer)
    if status == APPROVED and allowed is not None:
        # Again in the UPDATE itself: an edit committed after the check was made is not approved.
        where = [*where, allowed]
    result = session.execute(
        update(Fragment)
        .where(*where)
        .values(status=status, reviewed_by=reviewer.name, reviewed_at=utcnow())
    )
    return result.rowcount or 0


def _texts_of(session: Session, ids: list[str]) -> dict[str, str]:
    """Each fragment's current text by id; NotFoundError naming the first id that does not exist."""
    wanted = [i for i in ids if is_fragment_id(i)]
    rows = session.execute(select(Fragment.id, Fragment.text).where(Fragment.id.in_(wanted)))
    texts = {fragment_id: text for fragment_id, text in rows}
    missing = [i for i in ids if i not in texts]
    if missing:
        raise NotFoundError(f"no fragment with id {missing[0]}")
    return texts


def _as_seen(ids: list[str], texts: dict[str, str], seen: Mapping[str, str] | None) -> list:
    """UPDATE conditions holding each id to the text its reviewer saw; ConflictError if stale.

    A page left open must not approve a text changed since it was loaded, nor one changed between
    this check and the UPDATE (the texts read here are pinned in the WHERE clause).
    """
    if seen is None:
        return [Fragment.id.in_(ids)]
    for fragment_id in ids:
        if seen.get(fragment_id) != version_of(texts[fragment_id]):
            raise ConflictError(
                f"fragment {fragment_id} changed since you saw it; reload and review it again"
            )
    return [or_(*(and_(Fragment.id == i, Fragment.text == texts[i]) for i in ids))]


def review(
    session: Session,
    fragment_ids: Iterable[str],
    status: str,
    reviewer: Reviewer,
    skip_own_edits: bool = False,
    seen: Mapping[str, str] | None = None,
    actor: Actor | None = None,
) -> Decision:
    """Set ``status`` on the given fragments, whatever they were; all must exist or none change.

    Approving one's own edit is refused (SelfApprovalError), or with ``skip_own_edits`` those
    fragments are left as they are and listed in the result. With ``seen`` (id → the
    ``text_version`` the reviewer saw), a fragment whose text differs is a ConflictError. With
    ``actor``, one audit entry records the decision (the fragment, or the ids of a bulk one).
    """
    ids = list(dict.fromkeys(fragment_ids))
    if not ids:
        raise CurationError("give at least one fragment id")
    texts = _texts_of(session, ids)
    own = _own_edits(session, select(Fragment.id).where(Fragment.id.in_(ids)), status, reviewer)
    if own and not skip_own_edits:
        raise _refusal(own[0], reviewer)
    decided = [i for i in ids if i not in own]
    if not decided:
        return Decision(status, 0, tuple(own))
    changed = _decide(session, _as_seen(decided, texts, seen), status, reviewer)
    if changed < len(decided):
        # Edited since the checks above (a concurrent request); the caller rolls back, so nothing
        # is decided on the strength of a text nobody checked.
        raise ConflictError("a fragment changed meanwhile; reload and review it again")
    if actor is not None:
        record(session, actor, f"fragment.{_DECISION_VERBS[status]}", "fragment",
               decided[0] if len(ids) == 1 else None,
               {"ids": decided, "count": changed, "skipped": list(own)} if len(ids) > 1 else None)
    return Decision(status, changed, tuple(own))


def review_pending(
    session: Session,
    status: str,
    reviewer: Reviewer,
    collection: str | None = None,
    actor: Actor | None = None,
) -> Decision:
    """Decide every pending fragment (of ``collection`` when given); return what changed.

    Only pending ones: a bulk action clears the queue and never overturns an earlier decision.
    The reviewer's own edits are skipped (left pending for another archivist) and listed.
    """
    where = [Fragment.status == PENDING]
    if collection is not None:
        collection = checked_text(collection, "collection")
        require_known_collection(session, collection)
        where.append(Fragment.collection == collection)
    own = _own_edits(session, select(Fragment.id).where(*where), status, reviewer)
    if own:
        where.append(Fragment.id.not_in(own))
    changed = _decide(session, where, status, reviewer)
    if actor is not None and changed:
        record(session, actor, f"fragment.{_DECISION_VERBS[status]}", "fragment", None,
               {"all_pending": True, "collection": collection, "count": changed,
                "skipped": list(own)})
    return Decision(status, changed, tuple(own))


def edit_text(
    session: Session, fragment: Fragment, text: str, editor: str, actor: Actor | None = None
) -> Fragment:
    """Replace a fragment's text (trimmed, 1–1000 characters), keeping the split original.

    A changed text goes back to review: it is pending again, its earlier review forgotten.
    With ``actor``, the change is recorded with the old and new text.
    """
    text = checked_text(text, "text").strip()
    if not text:
        raise CurationError("text must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise CurationError(f"text must be at most {MAX_TEXT_CHARS} characters")
    if text == fragment.text:
        return fragment
    if actor is not None:
        record(session, actor, "fragment.edit", "fragment", fragment.id,
               {"text": [fragment.text, text], "status": [fragment.status, PENDING]})
    if fragment.original_text is None:
        fragment.original_text = fragment.text
    fragment.text = text
    fragment.edited_by = editor
    fragment.edited_at = utcnow()
    # Whatever was approved was the old text: the new one is unchecked until someone reviews it.
    fragment.status = PENDING
    fragment.reviewed_by = None
    fragment.reviewed_at = None
    return fragment


def normalize_tag(tag: str) -> str:
    """A tag as stored: trimmed, lower-case, inner whitespace collapsed to one hyphen."""
    return "-".join(str(tag).lower().split())


def _valid_tags(tags: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated tags; CurationError for an empty or over-long one."""
    out = []
    for raw in tags:
        tag = normalize_tag(raw) if isinstance(raw, str) and "\x00" not in raw else ""
        if not tag or len(tag) > MAX_TAG_CHARS:
            raise CurationError(f"tags must be 1–{MAX_TAG_CHARS} characters of text")
        out.append(tag)
    return list(dict.fromkeys(out))


def change_tags(
    session: Session,
    fragment: Fragment,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    actor: Actor | None = None,
) -> list[str]:
    """Add and remove tags on ``fragment``; return its tags afterwards, sorted.

    With ``actor``, a change of tags is recorded (before and after).
    """
    add, remove = _valid_tags(add), _valid_tags(remove)
    before = sorted(tags_of(session, [fragment.id]).get(fragment.id, []))
    if remove:
        session.execute(
            delete(FragmentTag).where(FragmentTag.fragment_id == fragment.id, FragmentTag.tag.in_(remove))
        )
    have = set(tags_of(session, [fragment.id]).get(fragment.id, []))
    for tag in add:
        if tag not in have:
            session.add(FragmentTag(fragment_id=fragment.id, tag=tag))
            have.add(tag)
    session.flush()
    if actor is not None and sorted(have) != before:
        record(session, actor, "fragment.tags", "fragment", fragment.id,
               {"tags": [before, sorted(have)]})
    return sorted(have)


def tags_of(session: Session, fragment_ids: list[str]) -> dict[str, list[str]]:
    """Each given fragment's tags, sorted (fragments without tags are left out)."""
    out: dict[str, list[str]] = {}
    if not fragment_ids:
        return out
    rows = session.execute(
        select(FragmentTag.fragment_id, FragmentTag.tag)
        .where(FragmentTag.fragment_id.in_(fragment_ids))
        .order_by(FragmentTag.tag)
    )
    for fragment_id, tag in rows:
        out.setdefault(fragment_id, []).append(tag)
    return out


# --- Collections ----------------------------------------------------------------------------------


def normalize_collection_name(name: str) -> str:
    """A collection name as stored: trimmed, 1–100 characters; CurationError otherwise."""
    name = name.strip() if isinstance(name, str) and "\x00" not in name else ""
    if not name or len(name) > MAX_COLLECTION_CHARS:
        raise CurationError(f"a collection name must be 1–{MAX_COLLECTION_CHARS} characters")
    return name


def get_collection(session: Session, name: str) -> Collection:
    """The collection called ``name``; NotFoundError when there is none."""
    name = checked_text(name, "collection")
    collection = session.scalar(select(Collection).where(Collection.name == name))
    if collection is None:
        raise NotFoundError(f"no collection named {name!r}")
    return collection


def require_known_collection(session: Session, name: str) -> None:
    """NotFoundError unless ``name`` is a declared collection or some fragment is in it.

    Sources name their collection freely, so fragments may be in one nobody has declared yet.
    """
    if session.scalar(select(Collection.id).where(Collection.name == name)) is not None:
        return
    if session.scalar(select(Fragment.id).where(Fragment.collection == name).limit(1)) is None:
        raise NotFoundError(f"no collection named {name!r}")


def create_collection(
    session: Session, name: str, auto_approve: bool = False, actor: Actor | None = None
) -> Collection:
    """Declare a collection; ConflictError if the name is taken. ``actor``: recorded."""
    name = normalize_collection_name(name)
    if session.scalar(select(Collection.id).where(Collection.name == name)) is not None:
        raise ConflictError(f"collection {name!r} already exists")
    collection = Collection(name=name, auto_approve=bool(auto_approve), created_at=utcnow())
    session.add(collection)
    session.flush()
    if actor is not None:
        record(session, actor, "collection.add", "collection", name,
               {"auto_approve": collection.auto_approve})
    return collection


def set_auto_approve(
    session: Session, collection: Collection, auto_approve: bool, actor: Actor | None = None
) -> Collection:
    """Mark a collection auto-approve or not (fragments split from now on); ``actor``: recorded."""
    if not isinstance(auto_approve, bool):
        raise CurationError("auto_approve must be true or false")
    if collection.auto_approve != auto_approve:
        if actor is not None:
            record(session, actor, "collection.edit", "collection", collection.name,
                   {"auto_approve": [collection.auto_approve, auto_approve]})
        collection.auto_approve = auto_approve
    return collection


def list_collections(session: Session) -> list[tuple[Collection, dict[str, int]]]:
    """Every declared collection by name, with its fragment counts per status."""
    collections = list(session.scalars(select(Collection).order_by(Collection.name)))
    counts: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Fragment.collection, Fragment.status, func.count())
        .where(Fragment.collection.in_([c.name for c in collections]))
        .group_by(Fragment.collection, Fragment.status)
    )
    for name, status, count in rows:
        counts.setdefault(name, {})[status] = count
    return [(c, {s: counts.get(c.name, {}).get(s, 0) for s in STATUSES}) for c in collections]


def auto_approved(session: Session, names: Iterable[str | None]) -> set[str]:
    """Which of ``names`` are collections marked auto-approve."""
    wanted = {n for n in names if n}
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Collection.name).where(Collection.name.in_(wanted), Collection.auto_approve.is_(True))
        )
    )


def collection_as_dict(collection: Collection, counts: dict[str, int] | None = None) -> dict:
    """The JSON shape of a collection (with fragment counts when given)."""
    shape = {
        "name": collection.name,
        "auto_approve": collection.auto_approve,
        "created_at": collection.created_at.isoformat(),
    }
    if counts is not None:
        shape["fragments"] = counts
    return shape
