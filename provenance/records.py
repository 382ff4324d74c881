"""Log entries built from the archive's own rows: a capture with its parts, a fragment's decision.

The one module of provenance/ that reads the database; provenance.entries stays free of it so the
standalone verifier needs nothing of the app.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fragments.models import Fragment
from mirror.models import Capture, CapturePart, Replica
from mirror.replicas import STORED
from provenance.entries import (
    CaptureEntry,
    CaptureFacts,
    DecisionEntry,
    EntryError,
    PartRef,
    capture_entry,
    decision_entry,
)


def capture_facts(session: Session, capture: Capture) -> CaptureFacts:
    """The capture's source URL, fetch time and files (all but its manifest) with their CIDs."""
    parts = [p for p in capture.parts if p.role != "manifest"]
    shas = {p.sha256 for p in parts}
    cids = dict(session.execute(
        select(Replica.sha256, Replica.locator).where(
            Replica.sha256.in_(shas), Replica.backend == "ipfs", Replica.state == STORED
        )
    ).all()) if shas else {}
    return CaptureFacts(capture.url, capture.fetched_at,
                        tuple(PartRef(p.name, p.sha256, cids.get(p.sha256)) for p in parts))


def manifest_sha256(session: Session, capture_id: int) -> str:
    """The sha256 of the capture's manifest; EntryError while it has none (not finalized yet)."""
    sha = session.scalar(select(CapturePart.sha256).where(
        CapturePart.capture_id == capture_id, CapturePart.role == "manifest"))
    if sha is None:
        raise EntryError(f"capture {capture_id} has no manifest yet: it cannot be logged")
    return sha


def capture_entry_for(session: Session, capture: Capture) -> CaptureEntry:
    """The log entry of a stored capture, identical to the one its downloaded folder rebuilds."""
    return capture_entry(capture_facts(session, capture), manifest_sha256(session, capture.id))


def decision_entry_for(session: Session, fragment: Fragment, decision: str, decided_at: datetime,
                       archivist: str | None = None, *,
                       manifest: str | None = None) -> DecisionEntry:
    """The log entry of ``decision`` on ``fragment`` as its text reads now.

    ``archivist`` is an opaque key id (provenance.entries.archivist_key_id), never a name.
    ``manifest``: the capture's manifest sha256 when the caller has it (one query saved per entry).
    """
    if manifest is None:
        manifest = manifest_sha256(session, fragment.capture_id)
    return decision_entry(fragment.id, fragment.text, manifest, decision, decided_at, archivist)
