"""The archivists' curation API: list, approve, reject, edit and tag fragments; collections.

Every endpoint needs an archivist (Bearer token, or the login session plus CSRF for writes).
Supporters never reach these: they get approved fragments from embed's public endpoints.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from accounts.auth import current_actor, current_user, require_archivist
from fragments.curation import (
    CurationError,
    Decision,
    FragmentFilter,
    Reviewer,
    change_tags,
    collection_as_dict,
    create_collection,
    decision_status,
    edit_text,
    get_collection,
    get_fragment,
    list_collections,
    list_fragments,
    review,
    review_pending,
    set_auto_approve,
    tags_of,
)
from fragments.store import fragment_review_dict
from samizdat.web import db_session, json_error, page_args, runtime

bp = Blueprint("fragments", __name__)

MAX_BULK_IDS = 1000


def _json_body() -> dict:
    """The request's JSON object; CurationError when it is missing or not an object."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise CurationError("send a JSON object (Content-Type: application/json)")
    return body


def current_reviewer() -> Reviewer:
    """The logged-in archivist as a reviewer, under this archive's self-approval setting."""
    return Reviewer(current_user().name, runtime().settings.fragment_self_approve)


def decision_as_dict(decision: Decision) -> dict:
    """The JSON answer to a bulk decision: the status set, how many, and own edits left pending."""
    return {
        "status": decision.status,
        "changed": decision.changed,
        "skipped": list(decision.skipped),
    }


def _failed(exc: CurationError):
    """Undo the request's changes and answer with the error's status and message."""
    db_session().rollback()
    return json_error(exc.status, str(exc))


def _seen_in_body(fragment_id: str) -> dict[str, str] | None:
    """The optional ``{"seen": text_version}`` body: decide only if the text is the one read."""
    if not request.get_data():
        return None
    seen = _json_body().get("seen")
    if seen is None:
        return None
    if not isinstance(seen, str):
        raise CurationError("seen must be the text_version string you reviewed")
    return {fragment_id: seen}


def _reviewed(fragment_id: str, action: str):
    """Approve or reject one fragment and answer with its new state."""
    session = db_session()
    try:
        seen = _seen_in_body(fragment_id)
        review(session, [fragment_id], decision_status(action), current_reviewer(), seen=seen,
               actor=current_actor())
    except CurationError as exc:
        return _failed(exc)
    session.commit()
    fragment = get_fragment(session, fragment_id)
    return jsonify(fragment_review_dict(fragment, tags_of(session, [fragment.id]).get(fragment.id)))


@bp.get("/api/fragments")
@require_archivist
def list_fragments_api():
    """Fragments, paginated, filtered by status, collection, tag and a text search (q)."""
    try:
        page, per_page = page_args()
    except ValueError as exc:
        return json_error(400, str(exc))
    flt = FragmentFilter(
        status=request.args.get("status") or None,
        collection=request.args.get("collection") or None,
        tag=request.args.get("tag") or None,
        q=request.args.get("q") or None,
    )
    session = db_session()
    try:
        total, items = list_fragments(session, flt, (page - 1) * per_page, per_page)
    except CurationError as exc:
        return _failed(exc)
    tags = tags_of(session, [f.id for f in items])
    return jsonify(
        {
            "items": [fragment_review_dict(f, tags.get(f.id)) for f in items],
            "page": page,
            "per_page": per_page,
            "total": total,
        }
    )


@bp.get("/api/fragments/<fragment_id>")
@require_archivist
def get_fragment_api(fragment_id: str):
    """One fragment with its curation state and tags."""
    session = db_session()
    try:
        fragment = get_fragment(session, fragment_id)
    except CurationError as exc:
        return _failed(exc)
    return jsonify(fragment_review_dict(fragment, tags_of(session, [fragment.id]).get(fragment.id)))


@bp.post("/api/fragments/<fragment_id>/approve")
@require_archivist
def approve_fragment_api(fragment_id: str):
    """Approve one fragment: from now on supporters may be shown it."""
    return _reviewed(fragment_id, "approve")


@bp.post("/api/fragments/<fragment_id>/reject")
@require_archivist
def reject_fragment_api(fragment_id: str):
    """Reject one fragment: it is kept but never served."""
    return _reviewed(fragment_id, "reject")


@bp.patch("/api/fragments/<fragment_id>")
@require_archivist
def edit_fragment_api(fragment_id: str):
    """Edit a fragment's text (the split original is kept) and add or remove its tags."""
    session = db_session()
    try:
        body = _json_body()
        fragment = get_fragment(session, fragment_id)
        if "text" in body:
            # Back to pending: an edit is served only once another archivist approves it.
            edit_text(session, fragment, body["text"], current_user().name, actor=current_actor())
        add, remove = body.get("add_tags", []), body.get("remove_tags", [])
        if not isinstance(add, list) or not isinstance(remove, list):
            raise CurationError("add_tags and remove_tags must be lists of strings")
        if not ({"text", "add_tags", "remove_tags"} & set(body)):
            raise CurationError("nothing to change: send text, add_tags or remove_tags")
        tags = change_tags(session, fragment, add, remove, actor=current_actor())
    except CurationError as exc:
        return _failed(exc)
    session.commit()
    return jsonify(fragment_review_dict(fragment, tags))


@bp.post("/api/fragments/bulk")
@require_archivist
def bulk_review_api():
    """Approve or reject many: ``{"action", "ids": [...]}`` or every pending one of a collection.

    Named ids that include one's own edit are refused (403); a collection's pending ones are
    decided except one's own edits, which stay pending and are listed under ``skipped``.
    """
    session = db_session()
    try:
        body = _json_body()
        status = decision_status(body.get("action"))
        ids, collection = body.get("ids"), body.get("collection")
        if (ids is None) == (collection is None):
            raise CurationError("send either ids or collection, not both")
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise CurationError("ids must be a list of fragment ids")
            if len(ids) > MAX_BULK_IDS:
                raise CurationError(f"at most {MAX_BULK_IDS} ids at a time")
            decision = review(session, ids, status, current_reviewer(), actor=current_actor())
        else:
            decision = review_pending(
                session, status, current_reviewer(), collection, actor=current_actor()
            )
    except CurationError as exc:
        return _failed(exc)
    session.commit()
    return jsonify(decision_as_dict(decision))


@bp.get("/api/collections")
@require_archivist
def list_collections_api():
    """Every declared collection, with its fragment counts per status."""
    return jsonify(
        {"items": [collection_as_dict(c, counts) for c, counts in list_collections(db_session())]}
    )


@bp.post("/api/collections")
@require_archivist
def create_collection_api():
    """Declare a collection: ``{"name": "vietnam", "auto_approve": false}``; 201 with it."""
    session = db_session()
    try:
        body = _json_body()
        auto = body.get("auto_approve", False)
        if not isinstance(auto, bool):
            raise CurationError("auto_approve must be true or false")
        collection = create_collection(session, body.get("name"), auto, actor=current_actor())
    except CurationError as exc:
        return _failed(exc)
    session.commit()
    return jsonify(collection_as_dict(collection)), 201


@bp.patch("/api/collections/<name>")
@require_archivist
def update_collection_api(name: str):
    """Mark a collection auto-approve or not; applies to fragments split from now on."""
    session = db_session()
    try:
        body = _json_body()
        auto = body.get("auto_approve")
        if not isinstance(auto, bool):
            raise CurationError("send auto_approve: true or false")
        collection = set_auto_approve(
            session, get_collection(session, name), auto, actor=current_actor()
        )
    except CurationError as exc:
        return _failed(exc)
    session.commit()
    return jsonify(collection_as_dict(collection))
