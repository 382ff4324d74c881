"""The archivist's review page: pending fragments with approve, reject, edit and bulk forms.

Plain HTML forms posting back here, each with the session's CSRF token, so review works without
script; samizdat/static/review.js adds keyboard shortcuts on top (j/k, a, r, e).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from accounts.auth import archivist_page, current_user, safe_next, secure_page
from fragments.curation import (
    CurationError,
    FragmentFilter,
    decision_status,
    edit_text,
    get_fragment,
    list_fragments,
    review,
    tags_of,
)
from fragments.models import PENDING, STATUSES
from samizdat.web import db_session, page_number

bp = Blueprint("review", __name__, template_folder="templates")

PAGE_SIZE = 50


def _filter_args() -> tuple[FragmentFilter, int]:
    """The listing's filter and page number from the query string (pending by default)."""
    status = request.args.get("status", PENDING)
    page = page_number()
    flt = FragmentFilter(
        status=status if status in STATUSES else PENDING,
        collection=request.args.get("collection") or None,
        tag=request.args.get("tag") or None,
        q=request.args.get("q") or None,
    )
    return flt, page


def _render(error: str | None = None, status: int = 200):
    """The review page for the current query string, optionally with an error."""
    session = db_session()
    flt, page = _filter_args()
    total, items = list_fragments(session, flt, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    body = render_template(
        "fragments/review.html",
        fragments=items,
        tags=tags_of(session, [f.id for f in items]),
        flt=flt,
        statuses=STATUSES,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        error=error,
        here=request.full_path.rstrip("?"),
    )
    return secure_page(body, status, scripts=True)


def _back():
    """Return to the listing the form was posted from (only ever a path on this site)."""
    return redirect(safe_next(request.form.get("next"), url_for("review.review_page")), 303)


@bp.get("/archive/fragments")
@archivist_page
def review_page():
    """Fragments to review (pending unless ?status= says otherwise), newest capture first."""
    return _render()


@bp.post("/archive/fragments/<fragment_id>/<action>")
@archivist_page
def review_form(fragment_id: str, action: str):
    """Approve or reject one fragment from its row."""
    session = db_session()
    try:
        status = decision_status(action)
        review(session, [fragment_id], status, current_user().name)
    except CurationError as exc:
        session.rollback()
        return _render(error=str(exc), status=exc.status)
    session.commit()
    flash(f"Fragment {fragment_id[:8]}… {status}.", "ok")
    return _back()


@bp.post("/archive/fragments/<fragment_id>/edit")
@archivist_page
def edit_form(fragment_id: str):
    """Save an edited text (the split original is kept); approve too when that button was used."""
    session = db_session()
    try:
        fragment = get_fragment(session, fragment_id)
        edit_text(session, fragment, request.form.get("text", ""), current_user().name)
        if request.form.get("then") == "approve":
            review(session, [fragment_id], decision_status("approve"), current_user().name)
    except CurationError as exc:
        session.rollback()
        return _render(error=f"fragment {fragment_id[:8]}…: {exc}", status=exc.status)
    session.commit()
    flash(f"Fragment {fragment_id[:8]}… saved.", "ok")
    return _back()


@bp.post("/archive/fragments/bulk")
@archivist_page
def bulk_form():
    """Approve or reject every fragment shown on the page the form came from."""
    session = db_session()
    try:
        status = decision_status(request.form.get("action", ""))
        changed = review(session, request.form.getlist("ids"), status, current_user().name)
    except CurationError as exc:
        session.rollback()
        return _render(error=str(exc), status=exc.status)
    session.commit()
    flash(f"{changed} fragment{'' if changed == 1 else 's'} {status}.", "ok")
    return _back()
