"""The reader archive as a static site: readable from an IPFS gateway, an S3 URL or a folder when
our own domain is blocked.

Pages are rendered by the app itself (test-client GETs), so the static copy is exactly what the
live site serves; their links are rewritten to relative paths; captures' files are copied from the
local spool by sha256. A manifest (export path → sha256) of what each destination holds makes
every export incremental. See docs/static-export.md for what a static copy can and cannot enforce.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import posixpath
import re
import shutil
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

from flask import Blueprint, Flask, current_app, has_request_context, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from config.settings import Settings
from fragments.models import Fragment
from mirror.models import Capture, CapturePart, Source
from mirror.storage.sites import IpfsSite, S3Site, SiteFile, SiteReport, StaticSite
from provenance.models import LoggedCapture
from provenance.publish import LOG_SITE, snapshot
from samizdat.atomicfile import write_atomic
from samizdat.errors import SamizdatError, StorageError, UnsafePathError
from samizdat.filelock import try_lock
from samizdat.i18n import DEFAULT_LANGUAGE, LANG_ARG, LANGUAGES
from samizdat.paths import confined_file, confined_name

# The S3 prefix and the IPFS (MFS) directory name of the static copy; the embed uses "embed".
SITE_NAME = "site"
# Under SAMIZDAT_PUBLIC_DIR: the current export (a symlink swapped in one rename), the exports it
# points at, and what the dynamic pages read to link to the latest copy.
EXPORT_LINK = "site"
EXPORTS_DIR = "site-exports"
STATE_FILE = "archive-published.json"
# The endpoint serving a capture's stored files; its URLs are where the pages link to them.
FILE_ENDPOINT = "replay.capture_file"
# Roles whose files a browser renders (the offline copy and its images and stylesheets, and a
# browser capture's screenshots: PNGs Chromium made); the others (the page as served, the WARC,
# the manifest) are downloads.
RENDERED_ROLES = {"offline", "asset", "screenshot", "thumbnail"}
# A static host sends no CSP, so a captured file that can run script (SVG, HTML, XML…) would run
# it in the copy's origin when opened. An asset stays a rendered file only when both its type and
# its name (which gateways and folders go by) are ones no browser runs script from; any other is
# exported as a download, like the page as served.
_INERT_ASSET_TYPES = {"text/css", "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
                      "image/bmp", "image/x-icon", "image/vnd.microsoft.icon"}
_INERT_ASSET_SUFFIXES = (".css", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".bmp", ".ico")
# Downloads keep their name only with a suffix no browser or gateway renders as a document; any
# other gets ".txt" appended (shown as text): the bytes, and so their sha256, stay the same.
_KEPT_DOWNLOAD_SUFFIXES = (".gz", ".json", ".pdf", ".txt")

# Links the copy deliberately leaves to the live site, absolute and explicit: they need a server
# (the listing's search, facet filters and sorting; a diff of any two captures; a WACZ built on
# request) or are not the reader's (the embed builder, the archivist's pages, signing in). Any
# other link to the app must name a file of the export, or the export stops: a page that lands
# later is either exported (page_paths) or named here, never silently left pointing nowhere.
LIVE_ONLY: tuple[str, ...] = (
    r"/archive\?(?!((page|per_page|lang)=\w+&?)+$).*",  # search, facet filters, sorting
    r"/archive/\d+/diff(\?.*)?",      # compare two captures: any pair, so computed on request
    r"/archive/\d+/export\.wacz",     # every capture of a page as a WACZ, built on request
    r"/embed(/.*)?(\?.*)?",           # the supporters' snippet builder
    r"/manage/.*",                    # the archivists' workspace
    r"/login(\?.*)?",
)
# Form actions the copy answers itself: its front page in each language, whose search script
# (search.js) reads ?q=. Every other form goes to the live site.
COPY_ANSWERS: tuple[str, ...] = (r"/(\?lang=\w+)?",)

# In the WSGI environ of the exporter's requests (no HTTP client can set an environ key): the
# copy's own stable URLs, which its pages' "Blocked?" link shows.
EXPORT_ENVIRON = "samizdat.static_export"
PAGE_CACHE = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
SEARCH_INDEX = "search-index.json"
SEARCH_SCRIPT = "search.js"
EXCERPT_CHARS = 160


class StaticExportError(SamizdatError):
    """The static copy could not be built; the previous export stays in place."""


def _logged() -> object:
    """The condition that a capture is in the published log: the copy carries nothing else."""
    return Capture.id.in_(select(LoggedCapture.capture_id).where(
        LoggedCapture.published.is_(True), LoggedCapture.capture_id.is_not(None)))


def withheld_captures(session: Session) -> set[int]:
    """Stored captures the log does not hold yet: not public in the copy (links to them go to the
    live site, which says they are not yet logged)."""
    return set(session.scalars(select(Capture.id).where(Capture.status == "ok", ~_logged())))


def page_paths(session: Session) -> Iterator[str]:
    """Every reader page the static copy holds, from the database: the front page, the listing,
    each source's timeline, and the reader view and replay page of each stored capture that the
    published log holds (provenance.appender.logged_index): a capture not yet in the log is not
    yet public.

    Captures' files come from ``capture_files``. The listing's and the timelines' further pages
    (``?page=N``) and the stylesheets are not listed: they are followed from the pages that link
    to them, so this list never has to know a page size. What is deliberately left to the live
    site is ``LIVE_ONLY``.
    """
    yield "/"
    yield "/archive"
    sources = select(Capture.source_id).where(Capture.status == "ok").distinct().order_by(Capture.source_id)
    for source_id in session.scalars(sources):
        yield f"/archive/{source_id}"
    logged = select(Capture.id).where(Capture.status == "ok", _logged()).order_by(Capture.id)
    for capture_id in session.scalars(logged):
        yield f"/captures/{capture_id}/"
        yield f"/captures/{capture_id}/replay"


@dataclass(frozen=True)
class CaptureFile:
    """One stored file of a capture, as the static copy holds it."""

    capture_id: int
    name: str
    role: str
    sha256: str
    size: int
    content_type: str | None

    @property
    def download(self) -> bool:
        """Whether readers take this file away rather than view it (every file that could run
        script when opened from the copy's origin)."""
        if self.role not in RENDERED_ROLES:
            return True
        if self.role == "asset":
            kind = (self.content_type or "").split(";", 1)[0].strip().lower()
            return kind not in _INERT_ASSET_TYPES or not self.name.lower().endswith(_INERT_ASSET_SUFFIXES)
        return False


def capture_files(session: Session) -> Iterator[CaptureFile]:
    """Every stored file (offline copy, assets, downloads) of every successful capture the
    published log holds."""
    rows = session.execute(
        select(CapturePart.capture_id, CapturePart.name, CapturePart.role, CapturePart.sha256,
               CapturePart.size, CapturePart.content_type)
        .join(Capture, Capture.id == CapturePart.capture_id)
        .where(Capture.status == "ok", _logged()).order_by(CapturePart.capture_id, CapturePart.id)
    )
    for row in rows:
        yield CaptureFile(*row)


@dataclass(frozen=True)
class ExportedFile:
    """One file of an export: its path under the site root and its bytes or the spool blob."""

    path: str
    sha256: str
    size: int
    content_type: str
    immutable: bool = False
    download: bool = False  # sent as an attachment where the destination can say so (S3)
    data: bytes | None = None  # rendered pages and assets
    blob: str | None = None  # captures' files: read from the local spool when written
    source: Path | None = None  # the log's files: read from the log directory when written
    cache_control: str | None = None  # as the app's /log routes send it; else by ``immutable``


@dataclass
class StaticExportReport:
    """What one export did: counts per destination and where it can be read."""

    files: int = 0
    bytes: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    bytes_written: int = 0
    pages: int = 0
    search_index_bytes: int = 0
    sites: list[SiteReport] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    root_cid: str | None = None
    ipns_name: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    directory: str = ""
    seconds: float = 0.0


# --- Paths and links --------------------------------------------------------------------------

def export_path(url: str) -> str:
    """Where the page at ``url`` (a path, maybe with ``?page=N`` and ``?lang=``) lives in the export.

    A page in another language than the default lives under its language's folder
    (``vi/archive/3/index.html`` for ``/archive/3?lang=vi``), so that the copy holds every
    language the live site offers: the readers who most need the copy read Vietnamese.

    Pages become ``<path>/index.html`` and links name that file in full rather than ending in
    "/": a folder opened with file:// shows a listing, an S3 bucket's REST endpoint (unlike its
    website endpoint) serves no index document, and gateways differ on redirects, whereas an
    explicit ``…/index.html`` reached by a relative link works on all three and on any gateway
    path ``/ipfs/<cid>/…``, whatever prefix the copy is served under.
    """
    parts = urlsplit(url)
    path = unquote(parts.path).strip("/")
    query = dict(parse_qsl(parts.query))
    page = query.get("page")
    if page and int(page) > 1:
        path = f"{path}/page/{int(page)}".strip("/")
    language = query.get(LANG_ARG, DEFAULT_LANGUAGE)
    if language in LANGUAGES and language != DEFAULT_LANGUAGE:
        path = f"{language}/{path}".strip("/")
    return f"{path}/index.html" if path else "index.html"


def _file_export_path(url: str, download: bool) -> str:
    path = unquote(urlsplit(url).path).lstrip("/")
    if download and not path.lower().endswith(_KEPT_DOWNLOAD_SUFFIXES):
        return path + ".txt"
    return path


def relative_link(from_file: str, to_file: str) -> str:
    """The relative URL from the export file ``from_file`` to ``to_file``."""
    return posixpath.relpath(to_file, posixpath.dirname(from_file) or ".")


_ATTRIBUTE = re.compile(r"""(\s(?:href|src|action|poster|data)\s*=\s*)("([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)""")
_IFRAME_WITHOUT_SANDBOX = re.compile(r"<iframe\b(?![^>]*\ssandbox\b)", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def static_csp(settings: Settings) -> str:
    """The policy the exported pages carry in a <meta> (a static host sends no CSP header).

    No script but the copy's own search script, nothing loaded from elsewhere, frames only of the
    copy itself; forms may only go to the copy's own search or the live site.
    """
    live = _origin(settings.public_url)
    return ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; font-src 'self' data:; frame-src 'self'; "
            f"base-uri 'none'; form-action 'self' {live}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class LinkMap:
    """Maps the app's URLs to export files; ``LIVE_ONLY`` ones point at the live site, and a link
    to anything else the export does not hold stops the export."""

    def __init__(self, settings: Settings, live_only: Iterable[str] = LIVE_ONLY,
                 withheld: Iterable[int] = ()):
        self.live = settings.public_url.rstrip("/")
        # Captures the log does not hold yet: the copy links them to the live site.
        self.withheld = set(withheld)
        self.own_hosts = {"localhost", urlsplit(settings.public_url).netloc}
        self.files: dict[str, str] = {}  # URL (path[?page=N]) → export path of what is exported
        self.live_only = [re.compile(p) for p in live_only]
        self.copy_answers = [re.compile(p) for p in COPY_ANSWERS]

    def internal(self, value: str, base_url: str) -> tuple[str, str] | None:
        """(``path[?query]``, ``#fragment``) when ``value`` names a page of this app, else None."""
        if value.startswith(("#", "data:", "mailto:", "tel:", "javascript:")) or not value:
            return None
        parts = urlsplit(value)
        if parts.scheme or parts.netloc:
            if parts.scheme not in ("http", "https", "") or parts.netloc not in self.own_hosts:
                return None  # another site: left as it is (the source's own URL, for instance)
        elif not value.startswith("/"):
            parts = urlsplit(urljoin(base_url, value))  # "?page=2", "offline.html", "../3/"
        key = parts.path or "/"
        if parts.query:
            key += "?" + parts.query
        return key, ("#" + parts.fragment if parts.fragment else "")

    @staticmethod
    def paginated(key: str) -> str | None:
        """``key`` as ``path[?lang=L][&page=N]`` (``path`` itself for page 1 in the default
        language) when its query is a page number, maybe with the page size the linking page was
        rendered with (the timelines carry it), and/or a language the copy holds; else None."""
        path, _, query = key.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        names = [name for name, _ in params]
        args = dict(params)
        page = args.get("page", "1")
        language = args.get(LANG_ARG, DEFAULT_LANGUAGE)
        if (not page.isdigit() or language not in LANGUAGES or len(names) != len(set(names))
                or set(names) - {"page", "per_page", LANG_ARG} or not set(names) & {"page", LANG_ARG}):
            return None
        canonical = ([f"{LANG_ARG}={language}"] if language != DEFAULT_LANGUAGE else []) + (
            [f"page={int(page)}"] if int(page) > 1 else [])
        return path + ("?" + "&".join(canonical) if canonical else "")

    def target(self, key: str) -> str | None:
        """The export file holding the page or file at ``key``, if the export holds it."""
        return self.files.get(key) or self.files.get(self.paginated(key) or "")

    def rewrite(self, value: str, page_url: str, page_file: str, live: bool = False) -> str:
        """``value`` as a link from ``page_file``: relative if exported, the live site's otherwise
        (always the live site's with ``live``: a form's query needs a server to answer it, unless
        the copy answers it itself, ``COPY_ANSWERS``)."""
        found = self.internal(value, page_url)
        if found is None:
            return value
        key, fragment = found
        if live and not any(p.fullmatch(key) for p in self.copy_answers):
            return self.live + key + fragment
        target = self.target(key)
        if target is not None:
            return relative_link(page_file, target) + fragment
        if any(p.fullmatch(key) for p in self.live_only) or self._withheld(key):
            # Not in the copy by decision: the live site, said outright, so a reader who can
            # reach it still can, and no link points at a missing file.
            return self.live + key + fragment
        raise StaticExportError(f"{page_url} links to {key}, which the static copy does not hold "
                                "(export it in page_paths or name it in LIVE_ONLY): the static copy was not changed")


    def _withheld(self, key: str) -> bool:
        found = _CAPTURE_PAGE.match(key)
        return found is not None and int(found.group(1)) in self.withheld


_CAPTURE_PAGE = re.compile(r"/captures/(\d+)/")


def rewrite_html(text: str, links: LinkMap, page_url: str, page_file: str, csp: str) -> str:
    """The page with relative links, every iframe sandboxed and the CSP in a <meta>."""

    def attribute(match: re.Match) -> str:
        raw = match.group(3) if match.group(3) is not None else match.group(4)
        is_form = match.group(1).strip().lower().startswith("action")
        new = links.rewrite(html.unescape(raw), page_url, page_file, live=is_form)
        return f'{match.group(1)}"{html.escape(new, quote=True)}"'

    text = _ATTRIBUTE.sub(attribute, text)
    text = _CSS_URL.sub(lambda m: f"url({links.rewrite(m.group(2), page_url, page_file)})", text)
    # The replay frame must never run the archived page's scripts, whatever the page said.
    text = _IFRAME_WITHOUT_SANDBOX.sub('<iframe sandbox=""', text)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp, quote=True)}">'
    head = _HEAD.search(text)
    return text[:head.end()] + meta + text[head.end():] if head else meta + text


def redirect_page(target: str, live: bool) -> str:
    """A static stand-in for a redirect: a meta refresh and a link (the copy has no server)."""
    where = html.escape(target, quote=True)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={where}"><title>Moved</title></head>'
            f'<body><p><a href="{where}">{"On the live site" if live else "Continue"}</a></p></body></html>')


# --- Rendering --------------------------------------------------------------------------------

@dataclass
class _Rendered:
    url: str
    file: str
    status: int
    body: bytes
    content_type: str
    location: str | None = None


def _is_static_asset(app: Flask, path: str) -> bool:
    """Whether ``path`` is served by the app's or a blueprint's static folder (a stylesheet…)."""
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return False
    return endpoint == "static" or endpoint.endswith(".static")


def _render_all(app: Flask, session: Session, links: LinkMap, extra_paths: Iterable[str],
                copy_urls: dict[str, str]) -> tuple[list[_Rendered], list[tuple[CaptureFile, str]]]:
    """GET every listed page through the app, following pagination and static assets it links to.

    Any page answering 404 or an error stops the export: every page listed or linked is one
    the copy promises to hold.
    """
    files = []
    with app.test_request_context("/"):
        for f in capture_files(session):
            url = url_for(FILE_ENDPOINT, capture_id=f.capture_id, name=f.name)
            links.files[url] = _file_export_path(url, f.download)
            files.append((f, links.files[url]))
    rendered: list[_Rendered] = []
    queue = deque(dict.fromkeys([*page_paths(session), *extra_paths]))
    seen = set(queue)
    listed = set(queue)
    client = app.test_client()
    client.environ_base[EXPORT_ENVIRON] = copy_urls
    while queue:
        url = queue.popleft()
        response = client.get(url)
        status = response.status_code
        if status >= 400:
            raise StaticExportError(f"{url} answered {status}: the static copy was not changed")
        body = response.get_data()
        ctype = response.mimetype or "application/octet-stream"
        is_page = ctype == "text/html" or 300 <= status < 400
        file = export_path(url) if is_page else _file_export_path(url, False)
        links.files[url] = file
        if links.paginated(url):
            links.files[links.paginated(url)] = file
        item = _Rendered(url, file, status, body, ctype, response.headers.get("Location"))
        rendered.append(item)
        if ctype not in ("text/html", "text/css"):
            continue
        # Follow what the static copy needs and nobody listed: files of the app's and the
        # blueprints' static folders, and the further pages of a listed page.
        text = body.decode(response.mimetype_params.get("charset") or "utf-8", "replace")
        values = [html.unescape(m.group(3) if m.group(3) is not None else m.group(4))
                  for m in _ATTRIBUTE.finditer(text)] + [m.group(2) for m in _CSS_URL.finditer(text)]
        for value in values:
            found = links.internal(value, url)
            if not found:
                continue
            key = found[0]
            if "?" not in key:
                if key not in seen and _is_static_asset(app, key):
                    seen.add(key)
                    queue.append(key)
            elif key.split("?", 1)[0] in listed:
                # A further page of a listed page: rendered as linked (with the page size the
                # page was rendered with), saved as path?page=N; page 1 is the page itself.
                page = links.paginated(key)
                if page and page not in seen:
                    seen.add(page)
                    queue.append(key)
    return rendered, files


def _search_index(session: Session, links: LinkMap) -> bytes:
    """Per source: title, export URL, source URL, a short excerpt of its latest capture's text."""
    latest = (select(Capture.source_id, func.max(Capture.id).label("capture_id"))
              .where(Capture.status == "ok", _logged()).group_by(Capture.source_id).subquery())
    # One query (an IN list of every capture id would pass SQLite's variable limit at scale).
    rows = session.execute(
        select(Source.id, Source.url, Capture.id, Capture.title, Fragment.text)
        .join(latest, latest.c.source_id == Source.id)
        .join(Capture, Capture.id == latest.c.capture_id)
        .outerjoin(Fragment, (Fragment.capture_id == Capture.id) & (Fragment.position == 0))
        .order_by(Source.id)
    ).all()
    entries = []
    seen: set[int] = set()
    for source_id, source_url, capture_id, title, text in rows:
        if source_id in seen:
            continue  # one entry per source, whatever the fragments table holds
        seen.add(source_id)
        target = (links.files.get(f"/archive/{source_id}") or links.files.get(f"/captures/{capture_id}/"))
        if target is None:
            continue
        excerpt = " ".join((text or "").split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
        # Short keys: this file is fetched whole by phones on slow links.
        entries.append({"t": title or source_url, "u": target, "s": source_url, "x": excerpt})
    return json.dumps({"v": 1, "entries": entries}, ensure_ascii=False, separators=(",", ":")).encode()


def _search_script() -> bytes:
    return resources.files("archive").joinpath("assets", SEARCH_SCRIPT).read_bytes()


def build_export(app: Flask, session: Session, settings: Settings, extra_paths: Iterable[str] = (),
                 report: StaticExportReport | None = None,
                 copy_urls: dict[str, str] | None = None,
                 known: dict[str, str] | None = None) -> tuple[list[ExportedFile], StaticExportReport]:
    """Every file of the static copy (pages rendered and rewritten, captures' files by sha256,
    the published log under ``log/``); ``known`` is the local copy's manifest."""
    report = report or StaticExportReport()
    links = LinkMap(settings, withheld=withheld_captures(session))
    rendered, files = _render_all(app, session, links, extra_paths, copy_urls or {})
    links.files[f"/{SEARCH_INDEX}"] = SEARCH_INDEX
    links.files[f"/{SEARCH_SCRIPT}"] = SEARCH_SCRIPT
    csp = static_csp(settings)
    out: dict[str, ExportedFile] = {}

    def add(path: str, data: bytes, content_type: str) -> None:
        if path in out:
            raise StaticExportError(f"two pages would be written to {path}: the static copy was not changed")
        out[path] = ExportedFile(path, hashlib.sha256(data).hexdigest(), len(data), content_type, data=data)

    front = export_path("/")
    for item in rendered:
        if 300 <= item.status < 400:
            target = links.rewrite(item.location or "/", item.url, item.file)
            page = redirect_page(target, target.startswith(links.live))
            add(item.file, page.encode(), "text/html; charset=utf-8")
        elif item.content_type == "text/html":
            text = rewrite_html(item.body.decode("utf-8", "replace"), links, item.url, item.file, csp)
            add(item.file, text.encode(), "text/html; charset=utf-8")
            report.pages += 1
        elif item.content_type == "text/css":
            text = _CSS_URL.sub(lambda m, i=item: f"url({links.rewrite(m.group(2), i.url, i.file)})",
                                item.body.decode("utf-8", "replace"))
            add(item.file, text.encode(), "text/css; charset=utf-8")
        else:
            add(item.file, item.body, item.content_type)
    for f, path in files:
        ctype = "application/octet-stream" if f.download else (f.content_type or "application/octet-stream")
        try:
            confined_name(path)
        except UnsafePathError as exc:
            raise StaticExportError(f"capture {f.capture_id}'s part {f.name[:80]!r}: {exc}; "
                                    "the static copy was not changed") from None
        if path in out:
            raise StaticExportError(f"capture {f.capture_id}'s {f.name} would overwrite {path}")
        out[path] = ExportedFile(path, f.sha256, f.size, ctype, True, download=f.download, blob=f.sha256)
    if front in out:
        add(SEARCH_SCRIPT, _search_script(), "text/javascript; charset=utf-8")
    index = _search_index(session, links)
    report.search_index_bytes = len(index)
    add(SEARCH_INDEX, index, "application/json")
    for f in log_export_files(settings, known or {}):
        if f.path in out:
            raise StaticExportError(f"the log's {f.path} would overwrite a page: the static copy was not changed")
        out[f.path] = f
    return sorted(out.values(), key=_upload_order), report


def log_export_files(settings: Settings, known: dict[str, str]) -> list[ExportedFile]:
    """The published log, copied under the copy's ``log/`` so a reader of a mirror can verify
    offline against it. Read after the pages: every capture they show was published under an
    earlier (or this) checkpoint, and the checkpoint is read before the tiles it needs.
    ``known`` (export path → sha256) spares hashing tiles again."""
    prefix = f"{LOG_SITE}/"
    snap = snapshot(settings.log_path, {p[len(prefix):]: sha for p, sha in known.items()
                                        if p.startswith(prefix)})
    files = [*snap.files, *([snap.checkpoint] if snap.checkpoint else [])]
    out = []
    for f in files:
        is_file = isinstance(f.data, Path)
        out.append(ExportedFile(prefix + f.path, f.sha256, f.size, f.content_type, f.immutable,
                                data=None if is_file else f.data,
                                source=f.data if is_file else None, cache_control=f.cache_control))
    return out




def _upload_order(f: ExportedFile) -> tuple[int, str]:
    # Captures' files and the log's tiles first (new paths nothing links to yet), then assets
    # and the log's checkpoint, then pages, the front page last: a publish cut short leaves no
    # page linking to a file that is not there yet, and no checkpoint without its tiles.
    if f.blob is not None or f.source is not None:  # the checkpoint alone is held in memory
        rank = 0
    elif not f.content_type.startswith("text/html"):
        rank = 1
    elif f.path != "index.html":
        rank = 2
    else:
        rank = 3
    return rank, f.path


# --- Writing and publishing -------------------------------------------------------------------

class Manifests:
    """What each destination holds after its last successful export: export path → sha256."""

    def __init__(self, settings: Settings):
        self.path = settings.data_dir / "static-site" / "manifest.json"
        try:
            self.by_site: dict[str, dict[str, str]] = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            self.by_site = {}

    def get(self, site: str) -> dict[str, str]:
        """The manifest of ``site`` ("local", "s3", "ipfs"); empty before its first export."""
        return dict(self.by_site.get(site) or {})

    def save(self, site: str, manifest: dict[str, str]) -> None:
        """Record ``manifest`` as what ``site`` now holds (written atomically)."""
        self.by_site[site] = manifest
        write_atomic(self.path, json.dumps(self.by_site, sort_keys=True).encode())


def _export_lock(settings: Settings):
    """One export at a time (the CLI and the scheduler may both try)."""
    return try_lock(settings.data_dir / "static-site" / "lock",
                    StaticExportError("another static export is running; try again when it ends"))


def _file_bytes(f: ExportedFile, spool) -> bytes:
    if f.data is not None:
        return f.data
    if f.source is not None:
        try:
            data = f.source.read_bytes()
        except OSError as exc:
            raise StaticExportError(f"{f.path}: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise StaticExportError(f"{f.path} changed while the copy was made: try again")
        return data
    try:
        data = spool.get(f.blob)
    except StorageError as exc:
        raise StaticExportError(f"{f.path}: blob {f.blob} is not in the local spool ({exc})") from None
    if hashlib.sha256(data).hexdigest() != f.blob:
        raise StaticExportError(f"{f.path}: blob {f.blob} in the local spool does not match its sha256")
    return data


def write_local(files: list[ExportedFile], settings: Settings, spool, old: dict[str, str],
                report: StaticExportReport) -> Path:
    """Write the export beside the current one, then swap it in with one rename of a symlink.

    Unchanged files are hard links to the current export's (not written again); a failure removes
    the half-built directory and leaves the current export as it was.
    """
    public = settings.public_path
    current = public / EXPORT_LINK
    if current.exists() and not current.is_symlink():
        raise StaticExportError(f"{current} is not a symlink to an export; move it away first")
    exports = public / EXPORTS_DIR
    exports.mkdir(parents=True, exist_ok=True)
    name = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    building = exports / f".building-{name}"
    try:
        for f in files:
            dest = confined_file(building, f.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            previous = current / f.path
            if old.get(f.path) == f.sha256 and previous.is_file():
                try:
                    os.link(previous, dest)
                except OSError:
                    shutil.copyfile(previous, dest)
                report.unchanged += 1
                continue
            dest.write_bytes(_file_bytes(f, spool))
            report.written += 1
            report.bytes_written += f.size
        final = exports / name
        os.rename(building, final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    link = public / f".{EXPORT_LINK}-{name}"
    os.symlink(Path(EXPORTS_DIR) / name, link)
    os.replace(link, current)
    report.deleted = len(set(old) - {f.path for f in files})
    # Older exports (and builds a killed run left behind) go; the one just swapped in stays.
    for stale in exports.iterdir():
        if stale.name != name:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def remote_sites(settings: Settings) -> list[StaticSite]:
    """The configured public copies: an S3 prefix and an IPFS directory, named ``site``."""
    sites: list[StaticSite] = []
    if settings.s3_bucket:
        sites.append(S3Site(settings.s3_bucket, SITE_NAME, settings.s3_endpoint_url, settings.s3_region))
    if settings.ipfs_api:
        sites.append(IpfsSite(settings.ipfs_api, SITE_NAME, settings.ipfs_timeout))
    return sites


PUT_BATCH = 64


def publish_site(site: StaticSite, files: list[ExportedFile], directory: Path, manifests: Manifests,
                 report: SiteReport) -> None:
    """Send ``site`` only what changed since its own last export, then delete what went.

    What was sent before a failure is recorded, so the next export resumes; IPFS's root is
    pinned and named only once everything is in, so its previous root stays the published one.
    """
    old = manifests.get(site.name)
    done = dict(old)
    changed = [f for f in files if old.get(f.path) != f.sha256]
    removed = sorted(set(old) - {f.path for f in files})
    try:
        for start in range(0, len(changed), PUT_BATCH):
            batch = changed[start:start + PUT_BATCH]
            site.put([SiteFile(f.path, directory / f.path, f.content_type,
                               f.cache_control or (IMMUTABLE if f.immutable else PAGE_CACHE),
                               f.immutable, f.download)
                      for f in batch], report)
            done.update((f.path, f.sha256) for f in batch)
        if removed:
            site.delete(removed, report)
            for path in removed:
                done.pop(path, None)
        if isinstance(site, IpfsSite):
            site.publish_root(report)
    finally:
        manifests.save(site.name, done)


def _captures_through(session: Session) -> str | None:
    latest = session.scalar(select(func.max(Capture.processed_at)))
    return latest.isoformat() if latest else None


def logged_through(session: Session) -> int:
    """How many captures the published log holds: the copy changes when this grows, even with no
    capture processed since (a capture is logged some time after it is processed)."""
    return session.scalar(select(func.count()).select_from(LoggedCapture).where(
        LoggedCapture.published.is_(True))) or 0


def publish_static(app: Flask, extra_paths: Iterable[str] = (), full: bool = False) -> StaticExportReport:
    """Export the reader archive to the public directory, then to S3 and IPFS (what is configured).

    A destination that fails is reported in ``failures`` and keeps its previous copy; the
    others still publish. ``full`` forgets the manifests: every file is written and sent again
    (after a destination lost files behind our back, e.g. a new IPFS repository).
    """
    started = time.monotonic()
    runtime = app.extensions["samizdat"]
    settings: Settings = runtime.settings
    report = StaticExportReport()
    with _export_lock(settings):
        sites = remote_sites(settings)
        manifests = Manifests(settings)
        if full:
            manifests.by_site = {}
        with runtime.Session() as session:
            through = _captures_through(session)
            logged = logged_through(session)
            files, report = build_export(app, session, settings, extra_paths, report,
                                         stable_urls(settings, sites), manifests.get("local"))
        report.files = len(files)
        report.bytes = sum(f.size for f in files)
        directory = write_local(files, settings, runtime.stores["local"], manifests.get("local"), report)
        manifests.save("local", {f.path: f.sha256 for f in files})
        report.directory = str(settings.public_path / EXPORT_LINK)
        for site in sites:
            site_report = SiteReport(site.name)
            report.sites.append(site_report)
            try:
                publish_site(site, files, directory, manifests, site_report)
            except StorageError as exc:
                report.failures.append(f"{site.name}: {exc} (its previous copy stays published)")
        # A destination that failed still serves its previous copy: keep pointing readers at it.
        report.urls = {**_previous_urls(settings), **static_urls(settings, report)}
        report.seconds = time.monotonic() - started
        state = {"exported_at": datetime.now(timezone.utc).isoformat(), "captures_through": through,
                 "logged_through": logged,
                 "root_cid": report.root_cid, "ipns_name": report.ipns_name, "urls": report.urls,
                 "files": report.files, "bytes": report.bytes, "written": report.written,
                 "unchanged": report.unchanged, "deleted": report.deleted,
                 "failures": report.failures}
        write_atomic(settings.public_path / STATE_FILE, json.dumps(state, indent=2).encode())
    return report


def stable_urls(settings: Settings, sites: list[StaticSite]) -> dict[str, str]:
    """The copy's URLs that stay the same from one export to the next: IPNS and S3."""
    urls: dict[str, str] = {}
    for site in sites:
        if isinstance(site, IpfsSite):
            try:
                name = site.ipns_name()
            except StorageError:
                continue  # the node is down: the publish will say so
            urls["ipns"] = f"ipns://{name}/"
            for gateway in settings.gateway_list[:1]:
                urls["gateway"] = f"{gateway}/ipns/{name}/index.html"
        elif isinstance(site, S3Site):
            urls["s3"] = f"{settings.s3_public_base}/{SITE_NAME}/index.html"
    return urls


def _previous_urls(settings: Settings) -> dict[str, str]:
    try:
        return dict(json.loads((settings.public_path / STATE_FILE).read_bytes()).get("urls") or {})
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def static_urls(settings: Settings, report: StaticExportReport) -> dict[str, str]:
    """Where this export can be read: gateway and ipfs:// by root CID, ipns://, S3."""
    urls: dict[str, str] = {}
    ipfs = next((s for s in report.sites if s.site == "ipfs" and s.root_cid), None)
    if ipfs is not None:
        report.root_cid, report.ipns_name = ipfs.root_cid, ipfs.ipns_name
        urls["ipfs"] = f"ipfs://{ipfs.root_cid}/"
        for gateway in settings.gateway_list[:1]:
            urls["gateway"] = f"{gateway}/ipfs/{ipfs.root_cid}/index.html"
        if ipfs.ipns_name:
            urls["ipns"] = f"ipns://{ipfs.ipns_name}/"
    if any(s.site == "s3" for s in report.sites) and not any(f.startswith("s3:") for f in report.failures):
        urls["s3"] = f"{settings.s3_public_base}/{SITE_NAME}/index.html"
    return urls


# --- The dynamic pages' link to the latest copy -----------------------------------------------

_state_cache: dict[str, tuple[int, dict[str, str]]] = {}
_SAFE_SCHEMES = ("https://", "http://", "ipfs://", "ipns://")


def in_static_copy() -> bool:
    """Whether the page is being rendered for the static copy (its search is the copy's own)."""
    return has_request_context() and EXPORT_ENVIRON in request.environ


def latest_static_copy() -> dict[str, str]:
    """The latest export's URLs (``gateway``, ``ipfs``, ``ipns``, ``s3``), re-read when it changes.

    Pages rendered for an export get only the names that do not change with each export (IPNS,
    S3), which the exporter passes in: a page naming the previous root CID would differ every
    time, and no export would ever find its pages unchanged.
    """
    if in_static_copy():
        return request.environ[EXPORT_ENVIRON]
    return _latest_urls()


def _latest_urls() -> dict[str, str]:
    path = current_app.extensions["samizdat"].settings.public_path / STATE_FILE
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    cached = _state_cache.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        urls = json.loads(path.read_bytes()).get("urls") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    urls = {k: v for k, v in urls.items() if isinstance(v, str) and v.startswith(_SAFE_SCHEMES)}
    _state_cache[str(path)] = (mtime, urls)
    return urls


def copy_log_location() -> str:
    """Where the static copy being rendered serves its own ``log/``: its S3 or gateway address
    when it has one, else the path from the page being rendered (a copy opened as a folder)."""
    urls = request.environ.get(EXPORT_ENVIRON) or {}
    for name in ("s3", "gateway"):
        url = urls.get(name)
        if isinstance(url, str) and url.endswith("/index.html"):
            return url[:-len("index.html")] + LOG_SITE
    return relative_link(export_path(request.full_path), LOG_SITE)


# Carries the template global the reader's layout (archive/base.html) reads.
bp = Blueprint("static_copy", __name__)
bp.add_app_template_global(latest_static_copy, "latest_static_copy")
bp.add_app_template_global(in_static_copy, "in_static_copy")
