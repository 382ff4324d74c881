"""Storing fragment drafts and reading them back for serving."""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fragments.curation import auto_approved
from fragments.models import APPROVED, PENDING, Fragment
from fragments.split import FragmentDraft


def save_fragments(session: Session, drafts: list[FragmentDraft]) -> int:
    """Insert drafts not stored yet (by stable id); return how many were new. Caller commits.

    New fragments are approved when their collection is marked auto-approve, else pending.
    Fragments already stored are left alone, so re-splitting a capture never undoes a review.
    """
    if not drafts:
        return 0
    ids = [d.id for d in drafts]
    existing = set(session.scalars(select(Fragment.id).where(Fragment.id.in_(ids))))
    approved_collections = auto_approved(session, {d.capture.collection for d in drafts})
    added = 0
    for draft in drafts:
        if draft.id in existing:
            continue
        cap = draft.capture
        status = APPROVED if cap.collection in approved_collections else PENDING
        session.add(
            Fragment(
                id=draft.id,
                capture_id=cap.capture_id,
                position=draft.position,
                text=draft.text,
                language=draft.language,
                status=status,
                source_url=cap.source_url,
                title=cap.title,
                site_name=cap.site_name,
                country=cap.country,
                collection=cap.collection,
                category_code=cap.category_code,
                sha256=cap.sha256,
                cid=cap.cid,
                fetched_at=cap.fetched_at,
            )
        )
        existing.add(draft.id)
        added += 1
    return added


def random_approved(session: Session, rng: random.Random | None = None) -> Fragment | None:
    """One public fragment (approved in the published log: provenance.decisions) chosen
    uniformly at random, or None when there are none."""
    # Imported here: provenance.decisions imports (through mirror.replicas) this module.
    from provenance.decisions import is_public, logged_public

    # Count + offset uses the status index; ORDER BY random() would sort the whole table.
    count = session.scalar(select(func.count()).select_from(Fragment).where(logged_public()))
    if not count:
        return None
    offset = (rng or random).randrange(count)
    fragment = session.scalars(
        select(Fragment).where(logged_public()).order_by(Fragment.id).offset(offset).limit(1)
    ).first()
    return fragment if fragment is not None and is_public(session, fragment) else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def fragment_as_dict(fragment: Fragment) -> dict:
    """The public JSON shape of a fragment; an edited one says so and carries the split original.

    The sha256 and source URL vouch for ``original_text`` (the page really says it), never for an
    archivist's wording, so readers must be able to tell the two apart.
    """
    return {
        "id": fragment.id,
        "text": fragment.text,
        "edited": fragment.edited,
        "edited_at": _iso(fragment.edited_at),
        "original_text": fragment.original_text,
        "language": fragment.language,
        "source_url": fragment.source_url,
        "title": fragment.title,
        "site_name": fragment.site_name,
        "country": fragment.country,
        "collection": fragment.collection,
        "capture_id": fragment.capture_id,
        "sha256": fragment.sha256,
        "cid": fragment.cid,
        "fetched_at": fragment.fetched_at.isoformat(),
    }


def fragment_review_dict(fragment: Fragment, tags: list[str] | None = None) -> dict:
    """The archivist's JSON shape: the public one plus curation state, edits and tags."""
    return {
        **fragment_as_dict(fragment),
        "status": fragment.status,
        "text_version": fragment.text_version,
        "position": fragment.position,
        "category_code": fragment.category_code,
        "edited_by": fragment.edited_by,
        "reviewed_by": fragment.reviewed_by,
        "reviewed_at": _iso(fragment.reviewed_at),
        "tags": tags or [],
    }


def set_capture_cid(session: Session, capture_id: int, cid: str) -> None:
    """Record the IPFS CID of a capture on its fragments once it is known (caller commits)."""
    session.execute(update(Fragment).where(Fragment.capture_id == capture_id).values(cid=cid))
