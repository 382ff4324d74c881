"""Reader-facing JSON API of the mirror: sources and their captures (reading needs no account)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from mirror.models import Capture, Source
from samizdat.web import db_session, json_error

bp = Blueprint("mirror", __name__)

MAX_PAGE_SIZE = 200


def source_as_dict(source: Source) -> dict:
    """The public JSON shape of a source."""
    return {
        "id": source.id,
        "url": source.url,
        "country": source.country,
        "collection": source.collection,
        "interval_minutes": source.interval_minutes,
        "active": source.active,
        "created_at": source.created_at.isoformat(),
    }


def capture_as_dict(capture: Capture) -> dict:
    """The public JSON shape of a capture."""
    return {
        "id": capture.id,
        "source_id": capture.source_id,
        "status": capture.status,
        "url": capture.url,
        "final_url": capture.final_url,
        "http_status": capture.http_status,
        "content_type": capture.content_type,
        "title": capture.title,
        "sha256": capture.sha256,
        "size": capture.size,
        "s3_key": capture.s3_key,
        "cid": capture.cid,
        "error_reason": capture.error_reason,
        "error_message": capture.error_message,
        "fetched_at": capture.fetched_at.isoformat(),
    }


def _page_args() -> tuple[int, int]:
    try:
        page = max(1, int(request.args.get("page", 1)))
        per_page = min(MAX_PAGE_SIZE, max(1, int(request.args.get("per_page", 50))))
    except ValueError:
        raise ValueError("page and per_page must be whole numbers") from None
    return page, per_page


@bp.get("/api/sources")
def list_sources():
    """Sources, paginated, optionally filtered by country and collection."""
    try:
        page, per_page = _page_args()
    except ValueError as exc:
        return json_error(400, str(exc))
    query = select(Source)
    if request.args.get("country"):
        query = query.where(Source.country == request.args["country"].upper())
    if request.args.get("collection"):
        query = query.where(Source.collection == request.args["collection"])
    session = db_session()
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(Source.id).offset((page - 1) * per_page).limit(per_page))
    return jsonify(
        {
            "items": [source_as_dict(s) for s in items],
            "page": page,
            "per_page": per_page,
            "total": total,
        }
    )


@bp.get("/api/sources/<int:source_id>/captures")
def list_captures(source_id: int):
    """Every capture attempt of one source, newest first."""
    session = db_session()
    if session.get(Source, source_id) is None:
        return json_error(404, f"no source with id {source_id}")
    captures = session.scalars(
        select(Capture).where(Capture.source_id == source_id).order_by(Capture.fetched_at.desc())
    )
    return jsonify({"items": [capture_as_dict(c) for c in captures]})
