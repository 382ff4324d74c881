"""Request-scoped access to the runtime and a database session, and JSON error helpers."""

from __future__ import annotations

from collections.abc import Mapping

from flask import current_app, g, jsonify, request
from sqlalchemy.orm import Session

from samizdat.runtime import Runtime


def runtime() -> Runtime:
    """The runtime of the current app."""
    return current_app.extensions["samizdat"]


def db_session() -> Session:
    """One database session per request, opened lazily and closed at teardown."""
    if "db_session" not in g:
        g.db_session = runtime().Session()
    return g.db_session


def close_db_session(_exc=None) -> None:
    """Teardown: close the request's session if one was opened."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def json_error(status: int, message: str):
    """A JSON error body with one clear message."""
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


MAX_PAGE_SIZE = 200


def page_args() -> tuple[int, int]:
    """``page`` and ``per_page`` of a JSON listing; ValueError with one message when garbled."""
    try:
        page = max(1, int(request.args.get("page", 1)))
        per_page = min(MAX_PAGE_SIZE, max(1, int(request.args.get("per_page", 50))))
    except ValueError:
        raise ValueError("page and per_page must be whole numbers") from None
    return page, per_page


def page_number(args: Mapping[str, str] | None = None) -> int:
    """The ``page`` of an HTML listing (from ``args``, else the query string); garbled means 1."""
    try:
        return max(1, int((request.args if args is None else args).get("page", 1)))
    except ValueError:
        return 1
