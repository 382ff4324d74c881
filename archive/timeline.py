"""A source's timeline (every capture attempt, newest first: changed, unchanged or failed) and
a readable diff of the extracted text between any two of its captures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _
from sqlalchemy import String, func, literal, select, union_all

from archive.reading import (
    capture_replay_path,
    capture_text,
    reader_page,
    source_timeline_path,
    stored_capture,
)
from archive.textdiff import diff_paragraphs
from mirror.jobs import INTERRUPTED
from mirror.models import Capture, Job, Source
from mirror.pipeline import FAILED, OK, UNCHANGED
from mirror.reader import capture_link_path
from samizdat.i18n import keep_language_in_links
from samizdat.web import MAX_PAGE_SIZE, database_id, db_session, page_number

bp = Blueprint("timeline", __name__, template_folder="templates")
keep_language_in_links(bp)

PER_PAGE = 50


@dataclass(frozen=True)
class TimelineEntry:
    """One attempt to capture the source, as the timeline shows it."""

    at: datetime
    status: str  # first | changed | unchanged | failed
    capture_id: int | None = None  # None for a job that failed before recording a capture
    read_id: int | None = None  # the capture holding the bytes (an unchanged one's match)
    previous_id: int | None = None  # the stored capture before a changed one
    reason: str | None = None  # a failure's short reason code, never its message


def live_source(source_id: int) -> Source:
    """The source with this id; a friendly 404 otherwise."""
    source = db_session().get(Source, source_id)
    if source is None:
        abort(404, _("there is no page %(id)d in the archive", id=source_id))
    return source


def _per_page() -> int:
    try:
        return min(MAX_PAGE_SIZE, max(1, int(request.args.get("per_page", PER_PAGE))))
    except ValueError:
        return PER_PAGE


def _attempts(source_id: int):
    """SQL: every attempt, as (kind, id, at): captures, and failed jobs that left no capture."""
    captures = select(
        literal("capture", String).label("kind"), Capture.id.label("id"), Capture.fetched_at.label("at")
    ).where(Capture.source_id == source_id)
    # A job that crashed or lost its process records no capture: it is a failed attempt too.
    jobs = select(literal("job", String), Job.id, Job.finished_at).where(
        Job.source_id == source_id, Job.capture_id.is_(None),
        Job.state.in_((FAILED, INTERRUPTED)), Job.finished_at.is_not(None),
    )
    return union_all(captures, jobs).subquery()


def timeline_entries(source_id: int, page: int, per_page: int) -> tuple[list[TimelineEntry], int]:
    """One page of the source's attempts, newest first, and how many there are in all."""
    session = db_session()
    attempts = _attempts(source_id)
    total = session.scalar(select(func.count()).select_from(attempts))
    rows = session.execute(
        select(attempts.c.kind, attempts.c.id)
        .order_by(attempts.c.at.desc(), attempts.c.kind, attempts.c.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    capture_ids = [row.id for row in rows if row.kind == "capture"]
    captures = {c.id: c for c in session.scalars(select(Capture).where(Capture.id.in_(capture_ids)))}
    job_ids = [row.id for row in rows if row.kind == "job"]
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    # Stored captures in order, to name each changed one's predecessor (ids only: cheap).
    stored = list(session.scalars(
        select(Capture.id).where(Capture.source_id == source_id, Capture.status == OK)
        .order_by(Capture.fetched_at, Capture.id)
    ))
    previous = dict(zip(stored[1:], stored))
    entries = []
    for row in rows:
        if row.kind == "job":
            job = jobs[row.id]
            entries.append(TimelineEntry(job.finished_at, "failed", reason="interrupted"
                                         if job.state == INTERRUPTED else "internal error"))
            continue
        capture = captures[row.id]
        if capture.status == OK:
            status = "changed" if capture.id in previous else "first"
            entries.append(TimelineEntry(capture.fetched_at, status, capture.id, capture.id,
                                         previous.get(capture.id)))
        elif capture.status == UNCHANGED:
            entries.append(TimelineEntry(capture.fetched_at, "unchanged", capture.id,
                                         capture.same_as_id))
        else:
            entries.append(TimelineEntry(capture.fetched_at, "failed", capture.id,
                                         reason=capture.error_reason))
    return entries, total


@bp.get("/archive/<int:source_id>")
def source_timeline(source_id: int):
    """A source: what it is, and every capture of it, newest first."""
    source = live_source(source_id)
    per_page = _per_page()
    page = page_number()
    entries, total = timeline_entries(source.id, page, per_page)
    latest = db_session().scalars(
        select(Capture).where(Capture.source_id == source.id, Capture.status == OK)
        .order_by(Capture.fetched_at.desc(), Capture.id.desc()).limit(1)
    ).first()
    pages = max(1, -(-total // per_page))
    newest = newest_pair(source.id) if page == 1 else None
    return reader_page(render_template(
        "archive/timeline.html",
        source=source,
        title=(latest.title if latest else None) or source.url,
        latest=latest,
        entries=entries,
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        reader_path=capture_link_path,
        replay_path=capture_replay_path,
        export_url=f"{source_timeline_path(source.id)}/export.wacz",
        diff_url=f"{source_timeline_path(source.id)}/diff",
        # Compare is ready to press: the two newest stored versions are chosen already.
        pick_from=newest[0] if newest else None,
        pick_to=newest[1] if newest else None,
    ))


def newest_pair(source_id: int) -> tuple[int, int] | None:
    """(older, newer): the ids of the source's two newest stored captures, or None with fewer.

    Stored ones only (first or changed copies): an unchanged check holds the same text as the
    copy it matched, so comparing with it shows nothing.
    """
    ids = db_session().scalars(
        select(Capture.id).where(Capture.source_id == source_id, Capture.status == OK)
        .order_by(Capture.fetched_at.desc(), Capture.id.desc()).limit(2)
    ).all()
    return (ids[1], ids[0]) if len(ids) == 2 else None


def _capture_arg(name: str) -> int:
    """The capture id in query parameter ``name``; a 400 with the reason for anything else."""
    raw = request.args.get(name, "")
    capture_id = database_id(raw)
    if capture_id is None:
        abort(400, _("%(name)s must be a capture id (a whole number), not %(value)s",
                     name=name, value=repr(raw[:40])))
    return capture_id


def _comparable(source: Source, capture_id: int) -> Capture:
    """A capture of ``source`` holding bytes (an unchanged one stands for the one it matched)."""
    capture = db_session().get(Capture, capture_id)
    if capture is None or capture.source_id != source.id:
        abort(404, _("capture %(id)d is not a capture of this page", id=capture_id))
    if capture.status == UNCHANGED and capture.same_as_id:
        capture = db_session().get(Capture, capture.same_as_id) or capture
    return stored_capture(capture.id)


@bp.get("/archive/<int:source_id>/diff")
def source_diff(source_id: int):
    """What changed in the text between two captures of a source: words inserted and deleted."""
    source = live_source(source_id)
    if not request.args.get("from") or not request.args.get("to"):
        # A reader pressed Compare without choosing two captures: say how, on a page of ours.
        newest = newest_pair(source.id)
        return reader_page(render_template(
            "archive/choose_diff.html",
            source=source,
            timeline_url=source_timeline_path(source.id),
            newest_url=(f"{source_timeline_path(source.id)}/diff?from={newest[0]}&to={newest[1]}"
                        if newest else None),
        ), 400)
    older_id, newer_id = _capture_arg("from"), _capture_arg("to")
    older, newer = _comparable(source, older_id), _comparable(source, newer_id)
    diff = None
    if older.sha256 != newer.sha256:
        old_text, new_text = capture_text(older), capture_text(newer)
        diff = diff_paragraphs(
            old_text.paragraphs if old_text else [], new_text.paragraphs if new_text else []
        )
    return reader_page(render_template(
        "archive/diff.html",
        source=source,
        older=older,
        newer=newer,
        older_id=older_id,
        newer_id=newer_id,
        diff=diff,
        reader_path=capture_link_path,
        timeline_url=source_timeline_path(source.id),
    ))
