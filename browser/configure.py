"""What the settings say about the browser: its limits as browser records, and the Chromium to run.

Flask-free, read by the worker, the scheduler and `flask doctor` alike.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from browser.records import PageLimits, ProxyLimits
from config.settings import Settings

log = logging.getLogger(__name__)

# Debian's package installs /usr/bin/chromium; Ubuntu's and older Debian's chromium-browser.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# PageLimits waits this long at most for the network to go quiet, within the wall-clock limit.
_QUIET_WAIT_SECONDS = PageLimits().quiet_wait_seconds

_warned: set[str] = set()


def browser_limits(settings: Settings) -> tuple[PageLimits, ProxyLimits]:
    """The page's and the recording proxy's bounds from SAMIZDAT_BROWSER_*: the one mapping."""
    page = PageLimits(
        wall_seconds=settings.browser_wall_seconds,
        # Waiting for quiet never takes the whole wall-clock: the scroll needs some of it.
        quiet_wait_seconds=min(_QUIET_WAIT_SECONDS, settings.browser_wall_seconds / 2),
        max_scroll_steps=settings.browser_scroll_steps,
        max_height_px=settings.browser_max_height,
    )
    proxy = ProxyLimits(
        max_requests=settings.browser_max_requests,
        max_bytes=settings.browser_max_bytes,
        # One response is held to what the HTTP fetcher would take of a page, and never to more
        # than the whole capture may.
        max_response_bytes=min(settings.fetch_max_bytes, settings.browser_max_bytes),
        # And one upstream fetch to the fetcher's timeout, within the page's wall-clock.
        max_response_seconds=min(settings.fetch_timeout, settings.browser_wall_seconds),
    )
    return page, proxy


def find_chromium(settings: Settings, search_path: str | None = None) -> Path | None:
    """The Chromium executable: SAMIZDAT_CHROMIUM (a path, or a name looked up on PATH), else
    ``chromium`` or ``chromium-browser`` on PATH; None when there is none."""
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    candidates = (settings.chromium,) if settings.chromium else CHROMIUM_NAMES
    for name in candidates:
        found = shutil.which(name, path=path)
        if found:
            return Path(found).resolve()
    return None


def chromium_for_capture(settings: Settings) -> Path | None:
    """:func:`find_chromium` for a capture; when it is missing, one warning per process says that
    auto falls back to HTTP (not one per capture: a list of thousands would drown the log)."""
    found = find_chromium(settings)
    if found is None and settings.chromium not in _warned:
        _warned.add(settings.chromium)
        log.warning("%s: auto falls back to http, browser sources cannot be captured",
                    chromium_missing(settings))
    return found


def chromium_missing(settings: Settings) -> str:
    """Why no Chromium was found, in one phrase naming what was looked for."""
    if settings.chromium:
        return f"SAMIZDAT_CHROMIUM={settings.chromium} is not an executable file"
    return f"chromium not found (no {' or '.join(CHROMIUM_NAMES)} on PATH; set SAMIZDAT_CHROMIUM)"
