"""Curation: archivists approve, reject, edit and tag fragments, and manage collections.

One place for these decisions, used alike by the JSON API, the review page and the CLI. Callers
commit; every function checks its whole input before changing anything, so a bad id in a list
leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from fragments.models import APPROVED, PENDING, REJECTED, STATUSES, Collection, Fragment, FragmentTag
from samizdat.db import utcnow
from samizdat.errors import SamizdatError

MAX_TEXT_CHARS = 1000
MAX_TAG_CHARS = 64
MAX_COLLECTION_CHARS = 100
DECISIONS = {"approve": APPROVED, "reject": REJECTED}


class CurationError(SamizdatError):
    """A curation request that cannot be carried out; ``status`` is the HTTP status it maps to."""

    status = 400


class NotFoundError(CurationError):
    """A fragment or collection that does not exist."""

    status = 404


class ConflictError(CurationError):
    """Something that already exists (a collection of the same name)."""

    status = 409


@dataclass(frozen=True)
class FragmentFilter:
    """Which fragments a listing shows; None means any."""

    status: str | None = None
    collection: str | None = None
    tag: str | None = None
    q: str | None = None


def get_fragment(session: Session, fragment_id: str) -> Fragment:
    """The fragment with ``fragment_id``; NotFoundError when there is none."""
    fragment = session.get(Fragment, fragment_id)
    if fragment is None:
        raise NotFoundError(f"no fragment with id {fragment_id}")
    return fragment


def _filtered(query, flt: FragmentFilter):
    """Apply ``flt`` to a select over Fragment."""
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


def decision_status(action: str) -> str:
    """The status an action ("approve" or "reject") sets; CurationError for anything else."""
    if action not in DECISIONS:
        raise CurationError("action must be 'approve' or 'reject'")
    return DECISIONS[action]


def review(session: Session, fragment_ids: Iterable[str], status: str, reviewer: str) -> int:
    """Set ``status`` on the given fragments, whatever they were; all must exist or none change."""
    ids = list(dict.fromkeys(fragment_ids))
    if not ids:
        raise CurationError("give at least one fragment id")
    found = set(session.scalars(select(Fragment.id).where(Fragment.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"no fragment with id {missing[0]}")
    session.execute(
        update(Fragment)
        .where(Fragment.id.in_(ids))
        .values(status=status, reviewed_by=reviewer, reviewed_at=utcnow())
    )
    return len(ids)


def review_pending(
    session: Session, status: str, reviewer: str, collection: str | None = None
) -> int:
    """Decide every pending fragment (of ``collection`` when given); return how many changed.

    Only pending ones: a bulk action clears the queue and never overturns an earlier decision.
    """
    query = update(Fragment).where(Fragment.status == PENDING)
    if collection is not None:
        require_known_collection(session, collection)
        query = query.where(Fragment.collection == collection)
    result = session.execute(query.values(status=status, reviewed_by=reviewer, reviewed_at=utcnow()))
    return result.rowcount or 0


def edit_text(session: Session, fragment: Fragment, text: str, editor: str) -> Fragment:
    """Replace a fragment's text (trimmed, 1–1000 characters), keeping the split original."""
    text = (text or "").strip()
    if not text:
        raise CurationError("text must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise CurationError(f"text must be at most {MAX_TEXT_CHARS} characters")
    if text == fragment.text:
        return fragment
    if fragment.original_text is None:
        fragment.original_text = fragment.text
    fragment.text = text
    fragment.edited_by = editor
    return fragment


def normalize_tag(tag: str) -> str:
    """A tag as stored: trimmed, lower-case, inner whitespace collapsed to one hyphen."""
    return "-".join(str(tag).lower().split())


def _valid_tags(tags: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated tags; CurationError for an empty or over-long one."""
    out = []
    for raw in tags:
        tag = normalize_tag(raw) if isinstance(raw, str) else ""
        if not tag or len(tag) > MAX_TAG_CHARS:
            raise CurationError(f"tags must be 1–{MAX_TAG_CHARS} characters of text")
        out.append(tag)
    return list(dict.fromkeys(out))


def change_tags(
    session: Session, fragment: Fragment, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> list[str]:
    """Add and remove tags on ``fragment``; return its tags afterwards, sorted."""
    add, remove = _valid_tags(add), _valid_tags(remove)
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
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_COLLECTION_CHARS:
        raise CurationError(f"a collection name must be 1–{MAX_COLLECTION_CHARS} characters")
    return name


def get_collection(session: Session, name: str) -> Collection:
    """The collection called ``name``; NotFoundError when there is none."""
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


def create_collection(session: Session, name: str, auto_approve: bool = False) -> Collection:
    """Declare a collection; ConflictError if the name is taken."""
    name = normalize_collection_name(name)
    if session.scalar(select(Collection.id).where(Collection.name == name)) is not None:
        raise ConflictError(f"collection {name!r} already exists")
    collection = Collection(name=name, auto_approve=bool(auto_approve), created_at=utcnow())
    session.add(collection)
    session.flush()
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
