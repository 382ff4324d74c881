"""Error responses for every HTTPException: JSON for the API, a friendly HTML page elsewhere."""

from __future__ import annotations

import logging

from flask import Response, render_template, request
from flask_babel import lazy_gettext
from markupsafe import escape
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from accounts.auth import secure_page
from samizdat.web import json_error

log = logging.getLogger(__name__)

# Headers an HTTPException carries that must reach the client (Allow on a 405, Retry-After on a
# 429 or 503, WWW-Authenticate on a 401); its own Content-Type describes its default body, not ours.
_DROPPED_HEADERS = {"content-type"}


# Paths read by programs, not people: the API, health, oEmbed consumers and embed.js's packs.
_MACHINE_PREFIXES = ("/api/", "/oembed", "/embed/packs/")
_MACHINE_PATHS = ("/api", "/healthz", "/readyz", "/metrics")


def is_machine_path(path: str) -> bool:
    """Whether ``path`` is read by programs: the API, the ops probes and metrics, oEmbed, packs.

    Their errors are JSON, and /api/openapi.json describes every route among them.
    """
    return path.startswith(_MACHINE_PREFIXES) or path in _MACHINE_PATHS


def wants_json() -> bool:
    """True for the API (and the ops probes, oEmbed, packs), and for any client that prefers JSON."""
    if is_machine_path(request.path):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


# The titles readers meet most, in their language; any other keeps werkzeug's English name.
_TITLES = {
    400: lazy_gettext("Bad request"),
    404: lazy_gettext("Not found"),
    405: lazy_gettext("Method not allowed"),
    413: lazy_gettext("Request too large"),
    429: lazy_gettext("Too many requests"),
    500: lazy_gettext("Something went wrong"),
    503: lazy_gettext("Unavailable right now"),
}


def _html_page(code: int, name: str, message: str) -> str:
    """The friendly page; a bare one if even the layout cannot render (say, mid-outage)."""
    try:
        name = str(_TITLES[code]) if code in _TITLES else name
        return render_template("error.html", code=code, name=name, message=message)
    except Exception:  # noqa: BLE001 - an error page must never fail in turn
        return (
            f"<!doctype html><html lang=en><meta charset=utf-8><title>{code} {escape(name)}"
            f"</title><h1>{escape(name)}</h1><p>{escape(message)}</p></html>"
        )


def error_response(exc: HTTPException) -> Response:
    """The response for ``exc``: JSON or HTML by :func:`wants_json`, with its headers kept.

    An unexpected exception reaches here as a 500 whose description is werkzeug's generic text,
    so no traceback or internal message is ever shown.
    """
    if exc.response is not None:
        return exc.response  # the raiser already built the exact response
    code = exc.code or 500
    message = exc.description or exc.name
    if wants_json():
        response = json_error(code, message)
    else:
        response = secure_page(_html_page(code, exc.name, message), code)
    for header, value in exc.get_headers():
        if header.lower() not in _DROPPED_HEADERS:
            response.headers[header] = value
    return response


# How long a client is asked to wait while the database is away: a restart takes seconds.
DATABASE_RETRY_AFTER_SECONDS = 5


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database cannot be reached right now, not a bad query.

    A refused or dropped connection (OperationalError, InterfaceError, any DBAPI error SQLAlchemy
    saw invalidate its connection) and an exhausted pool; an IntegrityError or a programming
    error is a bug or a conflict and stays a 500 or is handled where it happens.
    """
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def database_unavailable(exc: Exception) -> Response:
    """503 with Retry-After while the database is away (restarting, failing over, overloaded).

    JSON on the API, the friendly page elsewhere; SQLAlchemy has already dropped the broken
    connection, and the pool's pre-ping replaces the others once the database is back.
    """
    if not is_database_unavailable(exc):
        raise exc  # not ours: Flask answers it as the generic 500
    log.warning("database unavailable during %s %s: %s", request.method, request.path,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    unavailable = ServiceUnavailable("The archive's database is unavailable right now; try again shortly.")
    unavailable.retry_after = DATABASE_RETRY_AFTER_SECONDS
    return error_response(unavailable)
