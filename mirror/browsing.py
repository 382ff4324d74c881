"""Browser captures for the pipeline: the process's Chromiums, a recording proxy per capture.

One :class:`BrowserCapturer` per process (``Runtime.browser``), created on first use: it keeps up
to ``SAMIZDAT_BROWSER_CONCURRENCY`` ``BrowserPool``s (one Chromium each, one page at a time), so
at most that many pages render at once in the process, and closes them when the process stops
(the worker, the scheduler and the CLI call ``Runtime.close_browser``; ``atexit`` is the net).
Every render goes through its own :class:`RecordingProxy`, which holds the SSRF guard and writes
the capture's WARC: Chromium is never pointed at a page without it.
"""

from __future__ import annotations

import atexit
import io
import logging
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from browser.chromium import BrowserPool
from browser.configure import browser_limits, chromium_for_capture, chromium_missing
from browser.proxy import RecordingProxy
from browser.records import ProxyStats, RenderedPage
from config.settings import Settings
from mirror.requisites import ASSET_TYPES, find_requisites, requisite_name
from mirror.urls import normalize_url
from samizdat.errors import InvalidURLError, SamizdatError

log = logging.getLogger(__name__)

# The WARC-Target-URI of the records the pipeline adds after the proxy's: the rendered DOM and
# the screenshots (browsertrix-crawler's ``urn:<kind>:<url>`` convention).
DOM_URN, SCREENSHOT_URN, THUMBNAIL_URN = "urn:dom:", "urn:fullPage:", "urn:thumbnail:"


class NoBrowserError(SamizdatError):
    """No Chromium is installed or configured: a ``browser`` source cannot be captured."""


@dataclass
class BrowserRun:
    """One browser capture: what Chromium rendered, what the proxy did and the WARC it wrote."""

    page: RenderedPage
    stats: ProxyStats
    warc: bytes

    @property
    def limited_by(self) -> str | None:
        """The limit that ended the capture (the page's, else the proxy's), or None."""
        return self.page.ended_by or self.stats.ended_by


class BrowserCapturer:
    """The process's browsers: at most ``browser_concurrency`` renders at once, reused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.browser_concurrency)
        self._idle: queue.SimpleQueue[BrowserPool] = queue.SimpleQueue()
        self._pools: list[BrowserPool] = []
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    def available(self) -> bool:
        """Whether a Chromium is there to capture with (one warning per process if not)."""
        return chromium_for_capture(self.settings) is not None

    def _take(self, executable: str) -> BrowserPool:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pool = BrowserPool(executable, self.settings.browser_pages_per_process)
            with self._lock:
                if self._closed:
                    raise NoBrowserError("the process is stopping: no new browser is started")
                self._pools.append(pool)
            return pool

    def capture(self, url: str) -> BrowserRun:
        """Render ``url`` through a fresh recording proxy; raise NoBrowserError without Chromium
        and browser.chromium.BrowserUnavailable when it cannot start."""
        executable = chromium_for_capture(self.settings)
        if executable is None:
            raise NoBrowserError(chromium_missing(self.settings))
        page_limits, proxy_limits = browser_limits(self.settings)
        with self._slots:
            pool = self._take(str(executable))
            try:
                with tempfile.TemporaryDirectory(prefix="browser-", dir=self.settings.data_dir) as tmp:
                    proxy = RecordingProxy.for_settings(self.settings, Path(tmp), proxy_limits)
                    with proxy:
                        page = pool.render(
                            url, proxy.endpoint, page_limits, self.settings.fetch_user_agent
                        )
                    warc = b"".join(path.read_bytes() for path in proxy.warc_paths)
            finally:
                with self._lock:
                    if self._closed:
                        pool.close()
                    else:
                        self._idle.put(pool)
        return BrowserRun(page, proxy.stats, warc)

    def close(self) -> None:
        """Close every browser (and its Playwright driver); safe to call twice."""
        with self._lock:
            self._closed = True
            pools, self._pools = self._pools, []
        for pool in pools:
            try:
                pool.close()
            except Exception:  # noqa: BLE001 - closing the others matters more
                log.warning("closing a browser failed", exc_info=True)


def refused_target(url: str, stats: ProxyStats) -> str | None:
    """The proxy's reason for refusing the page's own address (e.g. ``blocked_address``)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    for entry in stats.refused:
        where, _, reason = entry.partition(" ")
        if where == f"{shown}:{port}":
            return reason
    return None


def warc_assets(
    warc: bytes, dom: bytes, base_url: str, limit: int, max_total_bytes: int
) -> list[tuple[str, bytes, str]]:
    """The stylesheets and images the rendered DOM uses, as the proxy recorded them:
    (file name, body, content type). Only complete 200 responses; within ``max_total_bytes``."""
    wanted = find_requisites(dom, base_url, "utf-8", limit)
    if not wanted:
        return []
    recorded: dict[str, tuple[bytes, str]] = {}
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type != "response" or record.http_headers is None:
            continue
        if record.rec_headers.get_header("WARC-Truncated"):
            continue
        try:
            url = normalize_url(record.rec_headers.get_header("WARC-Target-URI") or "")
        except InvalidURLError:
            continue
        if url not in wanted or url in recorded:
            continue
        if record.http_headers.get_statuscode() != "200":
            continue
        kind = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
        if not kind.startswith(ASSET_TYPES):
            continue
        recorded[url] = (record.content_stream().read(), kind)
    found, total = [], 0
    for url in wanted:
        if url not in recorded:
            continue
        body, kind = recorded[url]
        if total + len(body) > max_total_bytes:
            log.info("asset %s left out: requisites over %d bytes", url, max_total_bytes)
            continue
        total += len(body)
        found.append((requisite_name(url, kind), body, kind))
    return found


def with_rendered_records(run: BrowserRun, url: str, dom: bytes) -> bytes:
    """The proxy's WARC followed by ``resource`` records of the rendered DOM, the screenshot
    and the thumbnail, so a WARC or WACZ reader finds what the browser showed as well."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    for prefix, data, kind in (
        (DOM_URN, dom, "text/html; charset=utf-8"),
        (SCREENSHOT_URN, run.page.screenshot_png, "image/png"),
        (THUMBNAIL_URN, run.page.thumbnail_png, "image/png"),
    ):
        if data:
            writer.write_record(writer.create_warc_record(
                prefix + url, "resource", payload=io.BytesIO(data), length=len(data),
                warc_content_type=kind,
            ))
    # gzip members concatenate: one WARC file.
    return run.warc + out.getvalue()
