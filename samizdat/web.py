"""Request-scoped access to the runtime and a database session, JSON error helpers, and the
checks every request's input goes through once, where it enters: ids in the path, page numbers,
JSON bodies, and text no database can store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import IntegerConverter

# MAX_DB_INT lives with the tables (mirror/sources.py bounds ids with it outside a request);
# routes and tests import it from here too.
from samizdat.db import MAX_DB_INT
from samizdat.runtime import Runtime
from samizdat.text import find_unstorable, unstorable_reason


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
# Far past any real listing, yet (MAX_PAGE - 1) * MAX_PAGE_SIZE is a valid SQL OFFSET everywhere.
# Pages beyond it are clamped to it, as pages below 1 are clamped to 1: both are simply empty.
MAX_PAGE = 1_000_000


def _clamped(value: int, low: int, high: int) -> int:
    return min(high, max(low, value))


def page_args() -> tuple[int, int]:
    """``page`` and ``per_page`` of a JSON listing, clamped; ValueError when garbled."""
    try:
        page = _clamped(int(request.args.get("page", 1)), 1, MAX_PAGE)
        per_page = _clamped(int(request.args.get("per_page", 50)), 1, MAX_PAGE_SIZE)
    except ValueError:  # also a number too long for int() to read
        raise ValueError("page and per_page must be whole numbers") from None
    return page, per_page


def page_number(args: Mapping[str, str] | None = None) -> int:
    """The ``page`` of an HTML listing (from ``args``, else the query string), clamped; a missing
    or garbled one means the first page."""
    try:
        return _clamped(int((request.args if args is None else args).get("page", 1)), 1, MAX_PAGE)
    except ValueError:
        return 1


def page_size(default: int, maximum: int, args: Mapping[str, str] | None = None) -> int:
    """The ``per_page`` of an HTML listing, clamped to 1..``maximum``; a missing or garbled one
    means ``default``."""
    try:
        value = int((request.args if args is None else args).get("per_page", default))
    except ValueError:  # also a number too long for int() to read
        return default
    return _clamped(value, 1, maximum)


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number from ``low`` to ``high``, or None when it is not one.

    ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() then refuses, and
    int() refuses more than 4,300 digits, so the length is checked before it is called.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)):
        return None
    number = int(text)
    return number if low <= number <= high else None


def database_id(text: str) -> int | None:
    """``text`` as a database id (ASCII digits, at most MAX_DB_INT), or None when it is not one.

    For ids that arrive outside a route's ``<int:…>`` (query strings, CLI options).
    """
    return whole_number(text, 0, MAX_DB_INT)


class DatabaseIdConverter(IntegerConverter):
    """``<int:…>`` in every route: a whole number up to MAX_DB_INT; a larger one is a 404."""

    def to_python(self, value: str) -> Any:
        """The id as an int; NotFound past MAX_DB_INT (int() cannot even read 4301+ digits)."""
        if len(value) > len(str(MAX_DB_INT)) or int(value) > MAX_DB_INT:
            # NotFound, not ValidationError: werkzeug would then try the rules for the other
            # methods on this path and answer a misleading 405 for, say, DELETE /api/sources/<big>.
            raise NotFound(f"no such id: ids are at most {MAX_DB_INT}")
        return super().to_python(value)


class StorableJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body no database could store does not parse.

    ``request.get_json`` treats the ValueError raised here like any malformed body, so no route
    can receive NUL or lone surrogates, or crash on a document nested too deep to parse.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse ``s``; ValueError when it is not JSON or holds unstorable text."""
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        reason = find_unstorable(value)
        if reason:
            raise ValueError(f"a JSON string {reason}")
        return value


def json_object() -> dict:
    """The request's JSON object body; BadRequest (a 400 with the reason) for anything else."""
    if not request.is_json:
        raise BadRequest("send a JSON object with Content-Type: application/json")
    try:
        body = current_app.json.loads(request.get_data(cache=True))
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object with Content-Type: application/json")
    return body


def reject_unstorable_input() -> None:
    """Before every request: BadRequest when the path, query string or form holds unstorable text.

    Werkzeug decodes bad UTF-8 there as U+FFFD, but ``%00`` arrives as a NUL character.
    """
    fields = [("the URL path", value) for value in (request.view_args or {}).values()]
    fields += [(f"query parameter {name!r}", v) for name, v in request.args.items(multi=True)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields += [(f"form field {name!r}", v) for name, v in request.form.items(multi=True)]
    for where, value in fields:
        reason = isinstance(value, str) and unstorable_reason(value)
        if reason:
            raise BadRequest(f"{where} {reason}")
