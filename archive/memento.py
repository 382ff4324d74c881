"""Memento (RFC 7089): a TimeMap and a TimeGate per archived URL, and Memento headers on captures.

A capture's memento URI is its replay page, ``/captures/<id>/replay``; the original resource is
the source's URL. Readers' tools (the Memento browser extensions, Time Travel, pywb's
aggregators) then find every copy Samizdat keeps of a page by the page's own address.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from flask import Blueprint, Response, abort, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import http_date

from archive.reading import capture_replay_path
from mirror.models import Capture, Source
from mirror.urls import normalize_url
from samizdat.errors import InvalidURLError
from samizdat.web import db_session, runtime

log = logging.getLogger(__name__)

bp = Blueprint("memento", __name__)

LINK_FORMAT = "application/link-format"
TIMEMAP_PREFIX = "/timemap/link/"
TIMEGATE_PREFIX = "/timegate/"

# RFC 7089 §2.1.1: Accept-Datetime is an HTTP-date in RFC 1123 form, always GMT.
_RFC1123 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT"
)
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# A proxy (or Werkzeug, for other rules) may merge the "//" after the scheme into one "/".
_MERGED_SCHEME = re.compile(r"^(https?):/+(?=[^/])", re.IGNORECASE)
# What may stay unescaped inside <…> of a Link header: RFC 3986's reserved and unreserved
# characters and "%"; "<", ">", '"', spaces and non-ASCII are escaped.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~-._"


@dataclass(frozen=True)
class Memento:
    """One successful capture of an original URL: its id and when it was fetched."""

    capture_id: int
    datetime: datetime


def parse_accept_datetime(value: str) -> datetime:
    """The UTC datetime of an RFC 1123 date; ValueError when it is not one."""
    match = _RFC1123.fullmatch(value.strip())
    if match is None:
        raise ValueError("not an RFC 1123 date")
    day, month, year, hour, minute, second = match.groups()
    return datetime(
        int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second),
        tzinfo=timezone.utc,
    )


def _link_uri(url: str) -> str:
    """``url`` safe inside ``<…>`` of a Link header (and latin-1 encodable, as headers must be)."""
    return quote(url, safe=_URI_SAFE)


def _public(path: str) -> str:
    """``path`` on the app's public address (SAMIZDAT_PUBLIC_URL), as embed's links are: not
    on whatever Host a request named, nor on the address a proxy reached."""
    return runtime().settings.public_url.rstrip("/") + path


def memento_uri(capture_id: int) -> str:
    """The absolute memento URI of a capture: its replay page (served by the reader pages)."""
    return _public(capture_replay_path(capture_id))


def timegate_uri(original: str) -> str:
    """The absolute TimeGate URI of an original URL."""
    return _public(url_for("memento.timegate", url=original))


def timemap_uri(original: str) -> str:
    """The absolute link-format TimeMap URI of an original URL."""
    return _public(url_for("memento.timemap", url=original))


def _requested_urls(prefix: str, url: str) -> list[str]:
    """The original URLs a TimeMap or TimeGate request may mean, most literal first.

    The raw request target keeps the original's percent-escapes and "?" (the decoded path
    variable has lost both), so it comes first; the decoded form plus the query string follows.
    """
    raws = []
    raw_target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    prefix = request.script_root + prefix
    if raw_target.startswith(prefix):
        raws.append(raw_target[len(prefix):])
    query = request.query_string.decode("latin-1")
    decoded = url + ("?" + query if query else "")
    raws += [decoded, quote(decoded, safe=_URI_SAFE)]
    candidates: list[str] = []
    for raw in raws:
        raw = _MERGED_SCHEME.sub(r"\1://", raw)
        if "://" not in raw:
            raw = "http://" + raw  # "example.org/a", as some clients send it
        try:
            normal = normalize_url(raw)
        except InvalidURLError:
            continue  # CR/LF, 10,000 characters, no host…: no source can have this URL
        # A trailing slash rarely names a different page; the exact form still wins below.
        path, sep, rest = normal.partition("?")
        toggled = path[:-1] if path.endswith("/") and path.count("/") > 3 else path + "/"
        for candidate in (normal, toggled + sep + rest):
            if candidate not in candidates:
                candidates.append(candidate)
    return candidates


def _find_original(prefix: str, url: str) -> tuple[str, list[Memento]]:
    """The archived original URL a request names, with its mementos oldest first; 404 when
    the archive keeps no capture of it."""
    candidates = _requested_urls(prefix, url)
    if candidates:
        # Deleted sources are hidden from readers, and so from Memento too.
        sources = db_session().scalars(
            select(Source).where(Source.url.in_(candidates), Source.deleted_at.is_(None))
        ).all()
        for source in sorted(sources, key=lambda s: candidates.index(s.url)):
            rows = db_session().execute(
                select(Capture.id, Capture.fetched_at)
                .where(Capture.source_id == source.id, Capture.status == "ok")
                .order_by(Capture.fetched_at, Capture.id)
            ).all()
            if rows:
                return source.url, [Memento(cid, when) for cid, when in rows]
    abort(404, "the archive keeps no capture of this URL")


def _memento_link(memento: Memento, rel: str) -> str:
    """One memento entry of a Link header or TimeMap."""
    return (
        f'<{memento_uri(memento.capture_id)}>; rel="{rel}"; '
        f'datetime="{http_date(memento.datetime)}"'
    )


def _memento_rels(mementos: list[Memento], index: int) -> str:
    """The relation of the memento at ``index``: "memento", with "first"/"last" as it is."""
    words = []
    if index == 0:
        words.append("first")
    if index == len(mementos) - 1:
        words.append("last")
    return " ".join([*words, "memento"])


@bp.get("/timemap/link/<path:url>", merge_slashes=False)
def timemap(url: str):
    """The link-format TimeMap of an original URL: every successful capture of it."""
    original, mementos = _find_original(TIMEMAP_PREFIX, url)
    links = [
        f'<{_link_uri(original)}>; rel="original"',
        f'<{_link_uri(timegate_uri(original))}>; rel="timegate"',
        f'<{_link_uri(timemap_uri(original))}>; rel="self"; type="{LINK_FORMAT}"; '
        f'from="{http_date(mementos[0].datetime)}"; until="{http_date(mementos[-1].datetime)}"',
    ]
    links += [_memento_link(m, _memento_rels(mementos, i)) for i, m in enumerate(mementos)]
    return Response(",\n".join(links) + "\n", mimetype=LINK_FORMAT)


def _closest(mementos: list[Memento], wanted: datetime) -> int:
    """The index of the memento closest in time to ``wanted``; on a tie, the earlier one.

    RFC 7089 §4 leaves the choice to the TimeGate. Closest (pywb's and the Wayback Machine's
    rule) rather than closest-prior: a reader asking for a date before the first capture still
    gets the page, and a capture a minute after the date is nearer what was online then than
    one a month before it.
    """
    return min(
        range(len(mementos)),
        key=lambda i: (abs((mementos[i].datetime - wanted).total_seconds()), i),
    )


@bp.get("/timegate/<path:url>", merge_slashes=False)
def timegate(url: str):
    """Redirect to the capture closest to Accept-Datetime (the latest without one)."""
    header = request.headers.get("Accept-Datetime")
    wanted = None
    if header is not None:
        try:
            wanted = parse_accept_datetime(header)
        except ValueError:
            abort(
                400,
                'Accept-Datetime must be an RFC 1123 date, e.g. "Thu, 31 May 2007 20:35:00 GMT"',
            )
    original, mementos = _find_original(TIMEGATE_PREFIX, url)
    index = len(mementos) - 1 if wanted is None else _closest(mementos, wanted)
    chosen = mementos[index]
    links = [
        f'<{_link_uri(original)}>; rel="original"',
        f'<{_link_uri(timemap_uri(original))}>; rel="timemap"; type="{LINK_FORMAT}"',
    ]
    for i in sorted({0, index, len(mementos) - 1}):
        rel = _memento_rels(mementos, i)
        links.append(_memento_link(mementos[i], rel))
    response = Response(status=302)
    response.headers["Location"] = memento_uri(chosen.capture_id)
    # The answer depends on this request header: caches must key on it (RFC 7089 §4.1.1).
    response.headers["Vary"] = "accept-datetime"
    response.headers["Link"] = ", ".join(links)
    return response


@bp.after_app_request
def memento_headers(response: Response) -> Response:
    """Mark a capture's pages as mementos: Memento-Datetime and Link to original, TimeGate
    and TimeMap, on every 200 under /captures/<id>/ whichever module serves it."""
    args = request.view_args or {}
    capture_id = args.get("capture_id")
    if response.status_code != 200 or not isinstance(capture_id, int):
        return response
    if not request.path.startswith("/captures/"):
        return response
    try:
        capture = db_session().get(Capture, capture_id)
    except SQLAlchemyError:
        # The page itself was served; missing Memento headers must not turn it into an error.
        log.exception("no Memento headers for capture %s", capture_id)
        return response
    if capture is None or capture.status != "ok":
        return response
    response.headers["Memento-Datetime"] = http_date(capture.fetched_at)
    original = capture.url
    links = [
        f'<{_link_uri(original)}>; rel="original"',
        f'<{_link_uri(timegate_uri(original))}>; rel="timegate"',
        f'<{_link_uri(timemap_uri(original))}>; rel="timemap"; type="{LINK_FORMAT}"',
    ]
    existing = response.headers.get("Link")
    response.headers["Link"] = ", ".join([existing, *links] if existing else links)
    return response
