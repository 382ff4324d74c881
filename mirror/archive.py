"""Archivist pages: the list of sources with forms to add, edit, pause, resume and delete them.

Plain HTML forms posting back here (no script at all), each carrying the session's CSRF token;
the JSON API in mirror/routes.py does the same for scripts.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from accounts.auth import archivist_page, secure_page
from mirror.models import Capture, Source
from mirror.sources import add_source, delete_source, parse_interval, update_source
from samizdat.errors import SamizdatError
from samizdat.web import db_session, runtime

bp = Blueprint("archive", __name__, template_folder="templates")

PAGE_SIZE = 100


def _render_sources(error: str | None = None, form: dict | None = None, status: int = 200):
    """The sources page, optionally with an error and the values the archivist typed."""
    session = db_session()
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    live = select(Source).where(Source.deleted_at.is_(None))
    total = session.scalar(select(func.count()).select_from(live.subquery()))
    sources = list(
        session.scalars(live.order_by(Source.id).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    )
    last_capture = dict(
        session.execute(
            select(Capture.source_id, func.max(Capture.fetched_at))
            .where(Capture.source_id.in_([s.id for s in sources]))
            .group_by(Capture.source_id)
        ).all()
    )
    body = render_template(
        "archive/sources.html",
        sources=sources,
        last_capture=last_capture,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        error=error,
        form=form or {},
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


@bp.get("/archive/")
@archivist_page
def index():
    """The archivist's start page is the list of sources."""
    return redirect(url_for("archive.sources_page"))


@bp.get("/archive/sources")
@archivist_page
def sources_page():
    """Every live source, with the add form and per-source actions."""
    return _render_sources()


@bp.post("/archive/sources")
@archivist_page
def add_source_form():
    """Add a source from the form; errors come back on the same page with the values kept."""
    session = db_session()
    form = {k: request.form.get(k, "").strip() for k in ("url", "country", "collection", "every")}
    try:
        interval = (
            parse_interval(form["every"])
            if form["every"]
            else runtime().settings.default_interval_minutes
        )
        result = add_source(
            session,
            form["url"],
            interval,
            country=form["country"] or None,
            collection=form["collection"] or None,
        )
    except SamizdatError as exc:
        session.rollback()
        return _render_sources(error=str(exc), form=form, status=400)
    session.commit()
    if result.created:
        flash(f"Added {result.source.url}.", "ok")
    else:
        flash(f"{result.source.url} was already in the archive.", "ok")
    return redirect(url_for("archive.sources_page"), 303)


def _change(source_id: int, message: str, **changes):
    """Apply ``changes`` to a live source and go back to the list with ``message``."""
    session = db_session()
    source = session.get(Source, source_id)
    if source is None or source.deleted_at is not None:
        return _render_sources(error=f"no source with id {source_id}", status=404)
    try:
        if changes.pop("delete", False):
            delete_source(session, source)
        else:
            update_source(session, source, **changes)
    except SamizdatError as exc:
        session.rollback()
        return _render_sources(error=f"source {source_id}: {exc}", status=400)
    session.commit()
    flash(message.format(url=source.url), "ok")
    return redirect(url_for("archive.sources_page"), 303)


@bp.post("/archive/sources/<int:source_id>/edit")
@archivist_page
def edit_source_form(source_id: int):
    """Change country, collection and interval from the row's form."""
    try:
        every = request.form.get("every", "").strip()
        interval = parse_interval(every)
    except SamizdatError as exc:
        return _render_sources(error=f"source {source_id}: {exc}", status=400)
    return _change(
        source_id,
        "Saved {url}.",
        country=request.form.get("country", ""),
        collection=request.form.get("collection", ""),
        interval_minutes=interval,
    )


@bp.post("/archive/sources/<int:source_id>/pause")
@archivist_page
def pause_source_form(source_id: int):
    """Stop capturing a source for now."""
    return _change(source_id, "Paused {url}.", active=False)


@bp.post("/archive/sources/<int:source_id>/resume")
@archivist_page
def resume_source_form(source_id: int):
    """Capture a paused source again."""
    return _change(source_id, "Resumed {url}.", active=True)


@bp.post("/archive/sources/<int:source_id>/delete")
@archivist_page
def delete_source_form(source_id: int):
    """Delete a source; its captures stay, and adding the URL again brings it back."""
    return _change(source_id, "Deleted {url}; its captures are kept.", delete=True)
