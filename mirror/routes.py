"""Reader-facing JSON API of the mirror: sources and their captures (reading needs no account)."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from accounts.auth import (
    audit,
    current_actor,
    current_user,
    require_archivist,
    viewer_is_archivist,
)
from mirror.importer import MAX_IMPORT_BYTES, import_sources
from mirror.jobs import enqueue
from mirror.pipeline import MAX_DOCUMENT_BYTES, capture_document
from mirror.models import Capture, Job, Source
from mirror.replicas import replica_states
from mirror.storage.s3 import KEY_PREFIX as S3_KEY_PREFIX
from mirror.sources import (
    DEFAULT_CAPTURE_MODE,
    ConfirmationNeeded,
    add_source,
    bulk_change,
    delete_source,
    filtered_sources,
    interval_or_default,
    parse_interval,
    source_filter,
    update_source,
)
from samizdat.errors import SamizdatError, StorageError, StorageFullError
from samizdat.web import db_session, json_error, json_object, page_args, runtime

bp = Blueprint("mirror", __name__)
log = logging.getLogger(__name__)


def source_as_dict(source: Source) -> dict:
    """The public JSON shape of a source."""
    return {
        "id": source.id,
        "url": source.url,
        "country": source.country,
        "collection": source.collection,
        "interval_minutes": source.interval_minutes,
        "category_code": source.category_code,
        "category_description": source.category_description,
        "active": source.active,
        "capture_mode": source.capture_mode,
        "created_at": source.created_at.isoformat(),
    }


def capture_as_dict(capture: Capture, session=None, details: bool = False) -> dict:
    """The JSON shape of a capture; with a session, each part's replica states too.

    Error texts (``error_message``, each replica's ``last_error``) are shown with ``details``
    only, i.e. to archivists: they carry internal DNS answers, addresses and endpoints.
    """
    warc = next((p for p in capture.parts if p.role == "warc"), None)
    shape = {
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
        "error_message": capture.error_message if details else None,
        "fetched_at": capture.fetched_at.isoformat(),
        "charset": capture.charset,
        "complete": capture.complete,
        "same_as_id": capture.same_as_id,
        "capture_method": capture.capture_method,
        "method_reason": capture.method_reason,
        "limited_by": capture.limited_by,
        "warc_key": f"{S3_KEY_PREFIX}{warc.sha256}" if warc else None,
    }
    if session is not None:
        shape["parts"] = replica_states(session, capture)
        if not details:
            for part in shape["parts"]:
                for replica in part["replicas"].values():
                    if "last_error" in replica:
                        replica["last_error"] = None
    return shape


@bp.get("/api/sources")
def list_sources():
    """Sources, paginated, optionally filtered by country and collection."""
    try:
        page, per_page = page_args()
        flt = source_filter(
            country=request.args.get("country"),
            collection=request.args.get("collection"),
            q=request.args.get("q"),
            state=request.args.get("state"),
        )
    except (ValueError, SamizdatError) as exc:
        return json_error(400, str(exc))
    query = filtered_sources(flt)
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
    details = viewer_is_archivist()
    return jsonify({"items": [capture_as_dict(c, session, details) for c in captures]})


# --- Archivist writes: every one needs an archivist (a Bearer token, or a session plus CSRF). ---


def _optional_text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise SamizdatError(f"{name} must be a string")
    return value


def _live_source(source_id: int) -> Source | None:
    """The source with this id unless it does not exist or was deleted."""
    source = db_session().get(Source, source_id)
    return None if source is None or source.deleted_at is not None else source


@bp.post("/api/sources")
@require_archivist
def create_source():
    """Add a source from JSON {url, country?, collection?, every?, capture_mode?}: 201 new, 200
    already present (unchanged)."""
    session = db_session()
    try:
        body = json_object()
        url = body.get("url")
        if not isinstance(url, str):
            raise SamizdatError("url is required and must be a string")
        every = _optional_text(body, "every")
        interval = interval_or_default(every, runtime().settings)
        result = add_source(
            session,
            url,
            interval,
            country=_optional_text(body, "country"),
            collection=_optional_text(body, "collection"),
            actor=current_actor(),
            capture_mode=body.get("capture_mode", DEFAULT_CAPTURE_MODE),
        )
    except SamizdatError as exc:
        session.rollback()
        return json_error(400, str(exc))
    session.commit()
    return jsonify(source_as_dict(result.source)), (201 if result.created else 200)


@bp.patch("/api/sources/<int:source_id>")
@require_archivist
def patch_source(source_id: int):
    """Change a source's country, collection, every (interval), capture_mode or active."""
    session = db_session()
    source = _live_source(source_id)
    if source is None:
        return json_error(404, f"no source with id {source_id}")
    try:
        body = json_object()
        unknown = set(body) - {"country", "collection", "every", "active", "capture_mode"}
        if unknown:
            raise SamizdatError(f"cannot change {', '.join(sorted(unknown))}")
        changes: dict[str, object] = {}
        for name in ("country", "collection"):
            if name in body:
                changes[name] = _optional_text(body, name)
        if "every" in body:
            changes["interval_minutes"] = parse_interval(_optional_text(body, "every") or "")
        if "active" in body:
            changes["active"] = body["active"]
        if "capture_mode" in body:
            changes["capture_mode"] = body["capture_mode"]
        update_source(session, source, **changes, actor=current_actor())
    except SamizdatError as exc:
        session.rollback()
        return json_error(400, str(exc))
    session.commit()
    return jsonify(source_as_dict(source))


@bp.delete("/api/sources/<int:source_id>")
@require_archivist
def remove_source(source_id: int):
    """Delete a source: it stops being mirrored and listed; its captures are kept."""
    session = db_session()
    source = _live_source(source_id)
    if source is None:
        return json_error(404, f"no source with id {source_id}")
    delete_source(session, source, actor=current_actor())
    session.commit()
    return jsonify({**source_as_dict(source), "deleted_at": source.deleted_at.isoformat()})


_BULK_KEYS = {"action", "ids", "collection", "country", "q", "state", "confirm", "capture_mode"}


@bp.post("/api/sources/bulk")
@require_archivist
def bulk_sources():
    """Pause, resume, delete or set the capture mode of many sources: {action, ids?, collection?,
    country?, q?, state?, capture_mode? (with action mode)}.

    Deleting needs ``"confirm": true``; without it the answer is 400 with how many would go.
    """
    session = db_session()
    try:
        body = json_object()
        unknown = set(body) - _BULK_KEYS
        if unknown:
            raise SamizdatError(f"unknown field {', '.join(sorted(unknown))}")
        ids = body.get("ids", [])
        if not isinstance(ids, list):
            raise SamizdatError("ids must be a list of source ids")
        confirm = body.get("confirm", False)
        if not isinstance(confirm, bool):
            raise SamizdatError("confirm must be true or false")
        flt = source_filter(
            ids,
            country=_optional_text(body, "country"),
            collection=_optional_text(body, "collection"),
            q=_optional_text(body, "q"),
            state=_optional_text(body, "state"),
        )
        result = bulk_change(
            session, _optional_text(body, "action") or "", flt, confirmed=confirm,
            actor=current_actor(), capture_mode=body.get("capture_mode"),
        )
    except ConfirmationNeeded as needed:
        session.rollback()
        message = f'{needed}: send "confirm": true'
        return jsonify({"error": message, "status": 400, "matched": len(needed.matched)}), 400
    except SamizdatError as exc:
        session.rollback()
        return json_error(400, str(exc))
    session.commit()
    return jsonify({"action": result.action, "matched": result.matched, "changed": result.changed})


# --- End of archivist writes. ---


# --- Capture jobs and bulk import: archivist only. The web process never captures by itself: it
# queues a job that the scheduler process picks up within SAMIZDAT_JOBS_POLL_SECONDS. ---


def job_as_dict(job: Job) -> dict:
    """The JSON shape of a capture job."""
    duration = None
    if job.started_at and job.finished_at:
        duration = round((job.finished_at - job.started_at).total_seconds(), 3)
    return {
        "id": job.id,
        "source_id": job.source_id,
        "state": job.state,
        "trigger": job.trigger,
        "requested_by": job.requested_by,
        "capture_id": job.capture_id,
        "bytes": job.bytes,
        "reason": job.reason,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "seconds": duration,
    }


@bp.post("/api/sources/<int:source_id>/mirror")
@require_archivist
def trigger_capture(source_id: int):
    """Queue a capture of one source now: 202 with the job (an existing queued job is reused)."""
    session = db_session()
    if _live_source(source_id) is None:
        return json_error(404, f"no source with id {source_id}")
    job = enqueue(session, source_id, "request", requested_by=current_user().name)
    audit("source.capture", "source", source_id, {"job": job.id})
    session.commit()
    response = jsonify(job_as_dict(job))
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return response, 202


@bp.get("/api/jobs/<int:job_id>")
@require_archivist
def get_job(job_id: int):
    """One capture job with its state, timings, bytes and failure reason."""
    job = db_session().get(Job, job_id)
    if job is None:
        return json_error(404, f"no job with id {job_id}")
    return jsonify(job_as_dict(job))


@bp.get("/api/jobs")
@require_archivist
def list_jobs():
    """Capture jobs, newest first, optionally filtered by state."""
    try:
        page, per_page = page_args()
    except ValueError as exc:
        return json_error(400, str(exc))
    query = select(Job)
    if request.args.get("state"):
        query = query.where(Job.state == request.args["state"])
    session = db_session()
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    jobs = session.scalars(query.order_by(Job.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return jsonify({"items": [job_as_dict(j) for j in jobs], "page": page, "per_page": per_page, "total": total})


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def form_flag(name: str) -> bool:
    """A yes/no form field (absent means no); SamizdatError for anything else."""
    value = request.form.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise SamizdatError(f"{name} must be true or false")
    return value in _TRUE


@bp.post("/api/sources/import")
@require_archivist
def import_source_file():
    """Import an uploaded Citizen Lab CSV or URL list (multipart field ``file``); idempotent."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return json_error(400, "send the list as a multipart file field named 'file'")
    session = db_session()
    try:
        every = request.form.get("every") or None
        interval = interval_or_default(every, runtime().settings)
        paused = form_flag("paused")
        summary = import_sources(
            session,
            upload.read(MAX_IMPORT_BYTES + 1),
            upload.filename,
            interval,
            country=request.form.get("country") or None,
            collection=request.form.get("collection") or None,
            active=not paused,
            actor=current_actor(),
            capture_mode=request.form.get("capture_mode", DEFAULT_CAPTURE_MODE),
        )
    except SamizdatError as exc:
        session.rollback()
        return json_error(400, str(exc))
    session.commit()
    return jsonify(
        {
            "added": len(summary.added),
            "paused": paused,
            "already_present": summary.already_present,
            # Every invalid row is counted; only the first few are listed (see ImportSummary).
            "invalid_count": summary.invalid_count,
            "invalid": [{"line": line, "reason": reason} for line, reason in summary.invalid],
        }
    )


@bp.post("/api/sources/<int:source_id>/documents")
@require_archivist
def upload_document(source_id: int):
    """Keep an uploaded HTML or text file (multipart ``file``) as a capture of this source."""
    if _live_source(source_id) is None:
        return json_error(404, f"no source with id {source_id}")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return json_error(400, "send the document as a multipart file field named 'file'")
    try:
        outcome = capture_document(
            runtime(), source_id, upload.read(MAX_DOCUMENT_BYTES + 1), upload.filename,
            actor=current_actor(),
        )
    except StorageError as exc:
        # The server's fault, not the upload's: the operator's log gets the path, the client not.
        log.error("document upload for source %s not stored: %s", source_id, exc)
        if isinstance(exc, StorageFullError):
            return json_error(507, "the archive's storage is full; the document was not kept")
        return json_error(503, "the archive's storage failed; the document was not kept")
    except SamizdatError as exc:
        return json_error(400, str(exc))
    capture = db_session().get(Capture, outcome.capture_id)
    return jsonify(capture_as_dict(capture, db_session(), details=True)), 201
