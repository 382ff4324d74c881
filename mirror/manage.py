"""Archivist pages: sources (search, add, edit, pause, resume, delete, in bulk too, capture now),
import, jobs.

Plain HTML forms posting back here (no script at all), each carrying the session's CSRF token;
the JSON API in mirror/routes.py does the same for scripts. Like the API, these pages never
capture by themselves: "Capture now" queues a job for the scheduler process.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from accounts.auth import archivist_page, audit, current_actor, current_user, safe_next, secure_page
from mirror.importer import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS, import_sources
from mirror.jobs import JOB_STATES, enqueue
from mirror.models import Capture, Job, Source
from mirror.routes import form_flag, job_as_dict
from mirror.sources import (
    CAPTURE_MODES,
    DEFAULT_CAPTURE_MODE,
    SOURCE_STATES,
    ConfirmationNeeded,
    SourceFilter,
    add_source,
    bulk_change,
    filtered_sources,
    interval_or_default,
    parse_interval,
    source_filter,
    update_source,
)
from samizdat.errors import SamizdatError
from samizdat.web import db_session, page_number, runtime

bp = Blueprint("manage", __name__, template_folder="templates")

PAGE_SIZE = 100


def _live_source(source_id: int) -> Source | None:
    """The source with this id unless it is unknown or deleted."""
    source = db_session().get(Source, source_id)
    return None if source is None or source.deleted_at is not None else source


_FILTER_FIELDS = ("q", "country", "collection", "state")


def _list_filter() -> tuple[SourceFilter, dict[str, str], str | None]:
    """The sources page's filter from the query string, the raw values, and an error if any."""
    raw = {name: request.args.get(name, "").strip() for name in _FILTER_FIELDS}
    try:
        return source_filter(**raw), raw, None
    except SamizdatError as exc:
        return SourceFilter(), raw, str(exc)


def _here() -> str:
    """Where this page's forms send the archivist back to: the listing they are looking at."""
    if request.method == "POST":
        return safe_next(request.form.get("next"), url_for("manage.sources_page"))
    return request.full_path.rstrip("?")


def _back():
    """Back to the listing a form was posted from (its page and filter), never off this site."""
    return redirect(safe_next(request.form.get("next"), url_for("manage.sources_page")), 303)


def replayable_captures(session, capture_ids: list[int]) -> dict[int, int]:
    """For each capture id, the capture a reader can open: itself when stored, or the stored
    capture an "unchanged" one matched; failed captures are left out."""
    rows = session.execute(
        select(Capture.id, Capture.status, Capture.same_as_id).where(Capture.id.in_(capture_ids))
    )
    return {
        capture_id: capture_id if status == "ok" else same_as
        for capture_id, status, same_as in rows
        if status == "ok" or same_as is not None
    }


def _render_sources(error: str | None = None, form: dict | None = None, status: int = 200):
    """The sources page, optionally with an error and the values the archivist typed."""
    session = db_session()
    page = page_number()
    flt, raw_filter, filter_error = _list_filter()
    if filter_error and status == 200:
        status = 400
    live = filtered_sources(flt)
    total = session.scalar(select(func.count()).select_from(live.subquery()))
    sources = list(session.scalars(live.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    ids = [s.id for s in sources]
    last_capture = dict(
        session.execute(
            select(Capture.source_id, func.max(Capture.fetched_at))
            .where(Capture.source_id.in_(ids))
            .group_by(Capture.source_id)
        ).all()
    )
    # Ids grow with time, so the highest stored capture is the newest copy a reader can open.
    latest_copy = dict(
        session.execute(
            select(Capture.source_id, func.max(Capture.id))
            .where(Capture.source_id.in_(ids), Capture.status == "ok")
            .group_by(Capture.source_id)
        ).all()
    )
    body = render_template(
        "manage/sources.html",
        sources=sources,
        last_capture=last_capture,
        latest_copy=latest_copy,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        error=error or filter_error,
        form=form or {},
        flt=raw_filter,
        filter_args={k: v for k, v in raw_filter.items() if v},
        filtering=not flt.is_empty,
        states=SOURCE_STATES,
        modes=CAPTURE_MODES,
        here=_here(),
        default_every=f"{runtime().settings.default_interval_minutes}m",
    )
    return secure_page(body, status)


def _interval_text(minutes: int) -> str:
    """A capture interval the way archivists type it (6h rather than 360m)."""
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


bp.add_app_template_filter(_interval_text, "interval")


@bp.get("/manage/")
@archivist_page
def index():
    """The archivist's start page is the list of sources."""
    return redirect(url_for("manage.sources_page"))


@bp.get("/manage/sources")
@archivist_page
def sources_page():
    """Every live source, with the add form and per-source actions."""
    return _render_sources()


@bp.post("/manage/sources")
@archivist_page
def add_source_form():
    """Add a source from the form; errors come back on the same page with the values kept."""
    session = db_session()
    form = {k: request.form.get(k, "").strip() for k in ("url", "country", "collection", "every")}
    # An absent field is the default; one sent empty or unknown is refused by add_source.
    form["capture_mode"] = request.form.get("capture_mode", DEFAULT_CAPTURE_MODE)
    try:
        interval = interval_or_default(form["every"], runtime().settings)
        result = add_source(
            session,
            form["url"],
            interval,
            country=form["country"] or None,
            collection=form["collection"] or None,
            actor=current_actor(),
            capture_mode=form["capture_mode"],
        )
    except SamizdatError as exc:
        session.rollback()
        return _render_sources(error=str(exc), form=form, status=400)
    session.commit()
    if result.created:
        flash(f"Added {result.source.url}.", "ok")
    else:
        flash(f"{result.source.url} was already in the archive.", "ok")
    return _back()


def _change(source_id: int, message: str, **changes):
    """Apply ``changes`` to a live source and go back to the list with ``message``."""
    session = db_session()
    source = _live_source(source_id)
    if source is None:
        return _render_sources(error=f"no source with id {source_id}", status=404)
    try:
        update_source(session, source, **changes, actor=current_actor())
    except SamizdatError as exc:
        session.rollback()
        return _render_sources(error=f"source {source_id}: {exc}", status=400)
    session.commit()
    flash(message.format(url=source.url), "ok")
    return _back()


@bp.post("/manage/sources/<int:source_id>/edit")
@archivist_page
def edit_source_form(source_id: int):
    """Change country, collection, interval and capture mode from the row's form."""
    try:
        every = request.form.get("every", "").strip()
        interval = parse_interval(every)
    except SamizdatError as exc:
        return _render_sources(error=f"source {source_id}: {exc}", status=400)
    # A form without the field (an older page still open) leaves the mode as it is.
    mode = {"capture_mode": request.form["capture_mode"]} if "capture_mode" in request.form else {}
    return _change(
        source_id,
        "Saved {url}.",
        country=request.form.get("country", ""),
        collection=request.form.get("collection", ""),
        interval_minutes=interval,
        **mode,
    )


@bp.post("/manage/sources/<int:source_id>/pause")
@archivist_page
def pause_source_form(source_id: int):
    """Stop capturing a source for now."""
    return _change(source_id, "Paused {url}.", active=False)


@bp.post("/manage/sources/<int:source_id>/resume")
@archivist_page
def resume_source_form(source_id: int):
    """Capture a paused source again."""
    return _change(source_id, "Resumed {url}.", active=True)


@bp.post("/manage/sources/<int:source_id>/delete")
@archivist_page
def delete_source_form(source_id: int):
    """Delete a source after a confirmation page; its captures stay, and adding the URL again
    brings it back."""
    if _live_source(source_id) is None:
        return _render_sources(error=f"no source with id {source_id}", status=404)
    return _bulk("delete", source_filter([source_id]))


_BULK_DONE = {
    "pause": "Paused", "resume": "Resumed", "delete": "Deleted",
    "mode": "Changed the capture mode of",
}


def _bulk(action: str, flt: SourceFilter):
    """Run a bulk action from a page; a destructive one first shows what it would change."""
    session = db_session()
    try:
        result = bulk_change(
            session, action, flt, confirmed=request.form.get("confirm") == "yes",
            actor=current_actor(),
            # The bulk forms always send their mode menu; it counts for the mode button only.
            capture_mode=request.form.get("capture_mode") if action == "mode" else None,
        )
    except ConfirmationNeeded as needed:
        session.rollback()
        shown = select(Source.url).where(Source.id.in_(needed.matched)).order_by(Source.id)
        urls = list(session.scalars(shown.limit(20)))
        body = render_template(
            "manage/confirm.html", action=action, matched=needed.matched, urls=urls, here=_here()
        )
        return secure_page(body)
    except SamizdatError as exc:
        session.rollback()
        return _render_sources(error=str(exc), status=400)
    session.commit()
    noun = "source" if len(result.matched) == 1 else "sources"
    extra = "; their captures are kept" if action == "delete" else ""
    if action == "mode":
        extra = f" to {request.form.get('capture_mode')}"
    flash(f"{_BULK_DONE[action]} {result.changed} of {len(result.matched)} {noun}{extra}.", "ok")
    return _back()


@bp.post("/manage/sources/bulk")
@archivist_page
def bulk_form():
    """Pause, resume, delete or set the capture mode of the ticked sources, or of every source
    matching the list's filter."""
    try:
        flt = source_filter(
            request.form.getlist("ids"),
            **{name: request.form.get(name) for name in _FILTER_FIELDS},
        )
    except SamizdatError as exc:
        return _render_sources(error=str(exc), status=400)
    return _bulk(request.form.get("action", ""), flt)


@bp.post("/manage/sources/<int:source_id>/mirror")
@archivist_page
def capture_now_form(source_id: int):
    """Queue a capture of one source; the scheduler process runs it (an active job is reused)."""
    session = db_session()
    source = _live_source(source_id)
    if source is None:
        return _render_sources(error=f"no source with id {source_id}", status=404)
    job = enqueue(session, source.id, "request", requested_by=current_user().name)
    audit("source.capture", "source", source.id, {"job": job.id})
    session.commit()
    flash(f"Capture of {source.url} queued as job {job.id}.", "ok")
    return _back()


# --- Bulk import ---


def _render_import(
    summary=None, error: str | None = None, form: dict | None = None, status: int = 200
):
    """The import page: the upload form, then either the summary of an import or its error."""
    body = render_template(
        "manage/import.html",
        summary=summary,
        error=error,
        form=form or {},
        max_mib=MAX_IMPORT_BYTES // (1024 * 1024),
        max_rows=f"{MAX_IMPORT_ROWS:,}",
        modes=CAPTURE_MODES,
        default_every=f"{runtime().settings.default_interval_minutes}m",
    )
    return secure_page(body, status)


@bp.get("/manage/sources/import")
@archivist_page
def import_page():
    """The form to import a Citizen Lab test-list CSV or a list of URLs."""
    return _render_import()


@bp.post("/manage/sources/import")
@archivist_page
def import_form():
    """Import the uploaded list in one transaction and show what was added, known and invalid."""
    form = {k: request.form.get(k, "").strip() for k in ("country", "collection", "every")}
    form["capture_mode"] = request.form.get("capture_mode", DEFAULT_CAPTURE_MODE)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render_import(error="choose a file to import", form=form, status=400)
    session = db_session()
    try:
        form["paused"] = form_flag("paused")
        summary = import_sources(
            session,
            # One byte over the limit is enough for the importer to refuse the file as too large.
            upload.read(MAX_IMPORT_BYTES + 1),
            upload.filename,
            interval_or_default(form["every"], runtime().settings),
            country=form["country"] or None,
            collection=form["collection"] or None,
            active=not form["paused"],
            actor=current_actor(),
            capture_mode=form["capture_mode"],
        )
    except SamizdatError as exc:
        session.rollback()
        return _render_import(error=str(exc), form=form, status=400)
    session.commit()
    return _render_import(summary=summary, form=form)


# --- Capture jobs ---


@bp.get("/manage/jobs")
@archivist_page
def jobs_page():
    """Capture jobs, newest first, optionally only those in one state."""
    session = db_session()
    state = request.args.get("state", "")
    if state and state not in JOB_STATES:
        state, error, status = "", f"unknown job state {state!r}", 400
    else:
        error, status = None, 200
    query = select(Job, Source.url).join(Source, Job.source_id == Source.id)
    if state:
        query = query.where(Job.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = page_number()
    rows = session.execute(
        query.order_by(Job.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    body = render_template(
        "manage/jobs.html",
        # job_as_dict owns the duration; the template takes the rest from the job itself.
        jobs=[(job, url, job_as_dict(job)["seconds"]) for job, url in rows],
        copies=replayable_captures(session, [job.capture_id for job, _ in rows if job.capture_id]),
        states=JOB_STATES,
        state=state,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        error=error,
    )
    return secure_page(body, status)
