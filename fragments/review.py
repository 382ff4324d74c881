"""The archivist's review page: pending fragments with approve, reject, edit and bulk forms.

Plain HTML forms posting back here, each with the session's CSRF token, so review works without
script; samizdat/static/review.js adds keyboard shortcuts on top (j/k, a, r, e).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from accounts.auth import archivist_page, current_actor, current_user, safe_next, secure_page
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
from fragments.routes import current_reviewer
from samizdat.web import db_session, page_number

bp = Blueprint("review", __name__, template_folder="templates")

PAGE_SIZE = 50


def _listing_url() -> str:
    """The listing this request shows, or for a posted form the listing it was posted from.

    A refused form renders the listing again; its forms must lead back there, never to the
    POST-only address the refused form went to.
    """
    if request.method == "GET":
        return request.full_path.rstrip("?")
    return safe_next(request.form.get("next"), url_for("review.review_page"))


def _filter_args(args: Mapping[str, str]) -> tuple[FragmentFilter, int]:
    """The listing's filter and page number from its query ``args`` (pending by default)."""
    status = args.get("status", PENDING)
    flt = FragmentFilter(
        status=status if status in STATUSES else PENDING,
        collection=args.get("collection") or None,
        tag=args.get("tag") or None,
        q=args.get("q") or None,
    )
    return flt, page_number(args)


def _render(error: str | None = None, status: int = 200):
    """The review page of the current listing, optionally with an error."""
    session = db_session()
    here = _listing_url()
    flt, page = _filter_args(MultiDict(parse_qsl(urlsplit(here).query)))
    try:
        total, items = list_fragments(session, flt, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    except CurationError as exc:  # a filter no database can run, e.g. text with a NUL in it
        error, status, total, items = str(exc), exc.status, 0, []
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
        here=here,
        me=current_user().name,
        may_approve_own_edits=current_reviewer().may_approve_own_edits,
    )
    return secure_page(body, status, scripts=True)


def _back():
    """Return to the listing the form was posted from (only ever a path on this site)."""
    return redirect(_listing_url(), 303)


def _seen_texts(ids: list[str]) -> dict[str, str] | None:
    """Id → the text version the form showed (its ``seen`` fields, one per id), if it sent any."""
    seen = request.form.getlist("seen")
    if not seen:
        return None
    if len(seen) != len(ids):
        raise CurationError("the form is garbled; reload the page and try again")
    return dict(zip(ids, seen))


def _decide_one(fragment_id: str, action: str):
    """Approve or reject one fragment; the listing again with the reason when refused."""
    session = db_session()
    try:
        status = decision_status(action)
        seen = _seen_texts([fragment_id])
        review(session, [fragment_id], status, current_reviewer(), seen=seen, actor=current_actor())
    except CurationError as exc:
        session.rollback()
        return _render(error=str(exc), status=exc.status)
    session.commit()
    flash(f"Fragment {fragment_id[:8]}… {status}.", "ok")
    return _back()


@bp.get("/manage/fragments")
@archivist_page
def review_page():
    """Fragments to review (pending unless ?status= says otherwise), newest capture first."""
    return _render()


@bp.post("/manage/fragments/<fragment_id>/<action>")
@archivist_page
def review_form(fragment_id: str, action: str):
    """Approve or reject one fragment from its row, as long as its text is the one shown there."""
    return _decide_one(fragment_id, action)


@bp.post("/manage/fragments/<fragment_id>/edit")
@archivist_page
def edit_form(fragment_id: str):
    """Save an edited text (the split original is kept); approve too when that button was used.

    A saved edit stands even when its approval is refused (one's own edit): it waits, pending,
    for another archivist.
    """
    session = db_session()
    try:
        fragment = get_fragment(session, fragment_id)
        before = fragment.text
        edit_text(
            session, fragment, request.form.get("text", ""), current_user().name,
            actor=current_actor(),
        )
    except CurationError as exc:
        session.rollback()
        return _render(error=f"fragment {fragment_id[:8]}…: {exc}", status=exc.status)
    session.commit()
    if fragment.text == before:
        flash(f"Fragment {fragment_id[:8]}… unchanged.", "ok")
    else:
        flash(f"Fragment {fragment_id[:8]}… saved; it waits for review again.", "ok")
    if request.form.get("then") == "approve":
        return _decide_one(fragment_id, "approve")
    return _back()


@bp.post("/manage/fragments/bulk")
@archivist_page
def bulk_form():
    """Approve or reject every fragment shown on the page the form came from.

    One's own edits among them are left pending for another archivist, and the page says which;
    a text changed since the page was loaded refuses the lot (409).
    """
    session = db_session()
    ids = request.form.getlist("ids")
    try:
        status = decision_status(request.form.get("action", ""))
        decision = review(
            session, ids, status, current_reviewer(), skip_own_edits=True, seen=_seen_texts(ids),
            actor=current_actor(),
        )
    except CurationError as exc:
        session.rollback()
        return _render(error=str(exc), status=exc.status)
    session.commit()
    flash(f"{decision.changed} fragment{'' if decision.changed == 1 else 's'} {status}.", "ok")
    if decision.skipped:
        shortened = ", ".join(f"{i[:8]}…" for i in decision.skipped)
        flash(
            f"Not approved: {len(decision.skipped)} fragment(s) you edited yourself ({shortened}); "
            "another archivist must approve them.",
            "info",  # the rule working as meant, not a failure
        )
    return _back()
