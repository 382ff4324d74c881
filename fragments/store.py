"""Storing fragment drafts and reading them back for serving."""

from __future__ import annotations

import random

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fragments.models import APPROVED, Fragment
from fragments.split import FragmentDraft


def save_fragments(session: Session, drafts: list[FragmentDraft], status: str) -> int:
    """Insert drafts not stored yet (by stable id); return how many were new. Caller commits."""
    if not drafts:
        return 0
    ids = [d.id for d in drafts]
    existing = set(session.scalars(select(Fragment.id).where(Fragment.id.in_(ids))))
    added = 0
    for draft in drafts:
        if draft.id in existing:
            continue
        cap = draft.capture
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
                sha256=cap.sha256,
                cid=cap.cid,
                fetched_at=cap.fetched_at,
            )
        )
        existing.add(draft.id)
        added += 1
    return added


def random_approved(session: Session, rng: random.Random | None = None) -> Fragment | None:
    """One approved fragment chosen uniformly at random, or None when there are none."""
    # Count + offset uses the status index; ORDER BY random() would sort the whole table.
    count = session.scalar(select(func.count()).select_from(Fragment).where(Fragment.status == APPROVED))
    if not count:
        return None
    offset = (rng or random).randrange(count)
    return session.scalars(
        select(Fragment).where(Fragment.status == APPROVED).order_by(Fragment.id).offset(offset).limit(1)
    ).first()


def fragment_as_dict(fragment: Fragment) -> dict:
    """The public JSON shape of a fragment."""
    return {
        "id": fragment.id,
        "text": fragment.text,
        "language": fragment.language,
        "source_url": fragment.source_url,
        "title": fragment.title,
        "capture_id": fragment.capture_id,
        "sha256": fragment.sha256,
        "cid": fragment.cid,
        "fetched_at": fragment.fetched_at.isoformat(),
    }


def set_capture_cid(session: Session, capture_id: int, cid: str) -> None:
    """Record the IPFS CID of a capture on its fragments once it is known (caller commits)."""
    session.execute(update(Fragment).where(Fragment.capture_id == capture_id).values(cid=cid))
