"""Redirects from the archivist pages' old addresses (``/archive/sources…``, ``/archive/jobs…``,
``/archive/fragments…``) to their home under ``/manage/…``, now that readers own ``/archive``.

One rule for every moved page, mirror's and fragments' alike: the prefix is rewritten and the
rest of the path and the query string are kept. A GET (or HEAD) gets 301; a POST gets 308, which
makes the browser repeat the same method with the same body (a bookmarked form still works).
"""

from __future__ import annotations

from urllib.parse import quote, quote_from_bytes

from flask import Blueprint, redirect, request

bp = Blueprint("moved", __name__)

OLD_PREFIX = "/archive/"
NEW_PREFIX = "/manage/"
MOVED_ROOMS = ("sources", "jobs", "fragments")

# What may stay as it is in a Location header; everything else (CR, LF, spaces, non-ASCII…) is
# percent-encoded, so no byte of the request can end up as a header of the response.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"


def moved_location(room: str, rest: str, query_string: bytes) -> str:
    """The new address of an archivist page: ``/manage/<room>[/<rest>][?<query>]``, escaped."""
    location = NEW_PREFIX + quote(room + ("/" + rest if rest else ""), safe=_PATH_SAFE)
    if query_string:
        # The raw bytes as sent, so the query means exactly what it meant before; % is kept
        # because the bytes already carry their own escapes.
        location += "?" + quote_from_bytes(query_string, safe=_QUERY_SAFE)
    return location


_ROOMS = "any(" + ", ".join(MOVED_ROOMS) + ")"


@bp.route(f"{OLD_PREFIX}<{_ROOMS}:room>", methods=["GET", "POST"])
@bp.route(f"{OLD_PREFIX}<{_ROOMS}:room>/<path:rest>", methods=["GET", "POST"])
def moved_page(room: str, rest: str = ""):
    """Send a request for an old archivist address to its new one, method and body kept."""
    code = 308 if request.method == "POST" else 301
    return redirect(moved_location(room, rest, request.query_string), code)
