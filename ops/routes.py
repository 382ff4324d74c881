"""The ops blueprint: /healthz (alive), /readyz (dependencies), /metrics (Prometheus), and the hooks
that count requests and give log lines their request id and endpoint.

None of these sets a cookie or logs a client's address; only /metrics asks for credentials.
"""

from __future__ import annotations

import secrets
import uuid

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from accounts.auth import require_archivist, viewer_is_archivist
from config.logs import bind_log_context, unbind_log_context
from config.settings import Settings
from ops.metrics import AppMetrics
from ops.readiness import ReadinessChecker, readiness_report

bp = Blueprint("ops", __name__)

METRICS_KEY = "samizdat.metrics"
READINESS_KEY = "samizdat.readiness"
# Probes must see the current answer, never a proxy's copy.
NO_STORE = {"Cache-Control": "no-store"}


def init_ops(app: Flask, settings: Settings) -> AppMetrics:
    """Register the blueprint and this app's metrics and readiness checker; return the metrics."""
    runtime = app.extensions["samizdat"]
    metrics = app.extensions[METRICS_KEY] = AppMetrics(runtime, settings.metrics_cache_seconds)
    app.extensions[READINESS_KEY] = ReadinessChecker(runtime, settings.ready_timeout_seconds)
    app.register_blueprint(bp)
    return metrics


@bp.before_app_request
def bind_request_log_context() -> None:
    """Tag this request's log lines with a fresh id and the endpoint (never the URL or query)."""
    g.ops_log_token = bind_log_context(request_id=uuid.uuid4().hex[:16], endpoint=request.endpoint)


@bp.teardown_app_request
def unbind_request_log_context(_exc: BaseException | None) -> None:
    """Drop the request's log context from the worker thread."""
    token = g.pop("ops_log_token", None)
    if token is not None:
        unbind_log_context(token)


@bp.after_app_request
def count_request(response: Response) -> Response:
    """Count the answered request by endpoint class and status."""
    current_app.extensions[METRICS_KEY].count_request(
        request.path, response.status_code, request.blueprint, request.endpoint
    )
    return response


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. No dependency is called (that is /readyz)."""
    return jsonify(status="alive"), 200, NO_STORE


def _shows_details() -> bool:
    """Whether the caller is an archivist (or sends the metrics token); only asked when
    credentials were sent at all.

    A load balancer's probe sends none, so it never waits on the database through this check,
    and a database that fails here only costs the caller the details.
    """
    if "Authorization" not in request.headers and not request.cookies:
        return False
    if _sent_metrics_token():
        return True
    try:
        return viewer_is_archivist()
    except Exception:  # the database is what /readyz is reporting on: no details, no 500
        return False


@bp.get("/readyz")
def readyz():
    """Readiness: the database and every configured store answer; 503 naming the failing parts."""
    runtime = current_app.extensions["samizdat"]
    parts = current_app.extensions[READINESS_KEY].check()
    configured = {"database": True, "local": True, "s3": bool(runtime.settings.s3_bucket),
                  "ipfs": bool(runtime.settings.ipfs_api)}
    report = readiness_report(parts, configured, details=_shows_details())
    return jsonify(report), (200 if report["status"] == "ready" else 503), NO_STORE


def _sent_metrics_token() -> bool:
    """Whether the request carries SAMIZDAT_METRICS_TOKEN as its Bearer token."""
    expected = current_app.extensions["samizdat"].settings.metrics_token
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and secrets.compare_digest(
        sent.strip().encode(), expected.encode()
    )


def _exposition() -> Response:
    body, content_type = current_app.extensions[METRICS_KEY].render()
    return Response(body, headers={"Content-Type": content_type, **NO_STORE})


@require_archivist
def _metrics_for_archivists() -> Response:
    return _exposition()


@bp.get("/metrics")
def metrics():
    """Prometheus exposition; for SAMIZDAT_METRICS_TOKEN or an archivist's (or admin's) API token."""
    if _sent_metrics_token():
        return _exposition()
    return _metrics_for_archivists()
