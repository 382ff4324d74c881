"""What the browser does on a page so lazy content appears: wait for quiet, scroll to the end.

Everything here is bounded by the page's ``PageLimits`` and its wall-clock deadline, and reads the
network through Playwright's request events (so a request the page makes from a popup, a worker or
an iframe counts too). A limit that stops a behaviour is written into ``PageRun.stop_reason``.
"""

from __future__ import annotations

import time

from browser.records import PageLimits

# How often the waits look at the network and close popups (Playwright dispatches its events
# only while the sync API waits, so the waits are sliced).
POLL_MS = 100
# Once a page's network never went quiet (a stream, a long poll, a trickle), each scroll step
# waits this long at least instead of a full quiet_wait_seconds.
BUSY_STEP_SECONDS = 1.0

_MEASURE = """() => {
  const doc = document.scrollingElement || document.documentElement;
  return {y: window.scrollY, vh: window.innerHeight, h: doc ? doc.scrollHeight : 0};
}"""


class PageRun:
    """The state of one capture: in-flight requests, popups, dialogs, steps, why it stopped."""

    def __init__(self, limits: PageLimits, started: float) -> None:
        """``started`` is ``time.monotonic()`` at the start of the capture."""
        self.limits = limits
        self.deadline = started + limits.wall_seconds
        self.stop_reason: str | None = None
        self.busy = False  # the network never went quiet within quiet_wait_seconds
        self.scroll_steps = 0
        self.popups_closed = 0
        self.dialogs_dismissed = 0
        self._inflight: set = set()
        self._last_activity = time.monotonic()
        self._popups: list = []

    def left(self) -> float:
        """Seconds until the wall-clock limit."""
        return self.deadline - time.monotonic()

    def stop(self, reason: str) -> None:
        """Record the first limit that ended the page (later ones do not overwrite it)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def touch(self) -> None:
        """Something happened (navigation, a scroll): quiet is counted from now."""
        self._last_activity = time.monotonic()

    def quiet_seconds(self) -> float:
        """How long no request has been in flight (0 while one is)."""
        if self._inflight:
            return 0.0
        return time.monotonic() - self._last_activity

    # Playwright event handlers
    def _request_started(self, request) -> None:
        previous = request.redirected_from
        if previous is not None:
            self._inflight.discard(previous)
        self._inflight.add(request)
        self.touch()

    def _request_ended(self, request) -> None:
        self._inflight.discard(request)
        self.touch()

    def _popup_opened(self, page) -> None:
        self._popups.append(page)

    def _dialog(self, dialog) -> None:
        self.dialogs_dismissed += 1
        if self.dialogs_dismissed > self.limits.max_dialogs:
            self.stop("dialogs")
        try:
            dialog.dismiss()
        except Exception:  # noqa: BLE001 - the page may be gone already
            pass

    def watch(self, context) -> None:
        """Count the requests of every page of ``context``."""
        context.on("request", self._request_started)
        context.on("requestfinished", self._request_ended)
        context.on("requestfailed", self._request_ended)

    def watch_page(self, page) -> None:
        """Dismiss the page's dialogs, note a crash, and close every page opened after it."""
        page.on("dialog", self._dialog)
        page.on("crash", lambda _page: self.stop("crash"))
        page.context.on("page", self._popup_opened)

    def close_popups(self) -> None:
        """Close the popups opened since the last look; too many end the page."""
        while self._popups:
            popup = self._popups.pop()
            try:
                popup.close(run_before_unload=False)
            except Exception:  # noqa: BLE001 - it may have closed itself
                pass
            self.popups_closed += 1
            if self.popups_closed > self.limits.max_popups:
                self.stop("popups")


def wait_for_quiet(page, run: PageRun, bound_seconds: float) -> bool:
    """Wait until no request has been in flight for ``quiet_ms``; True if that happened.

    Gives up after ``bound_seconds`` or at the wall-clock deadline (then stops the page).
    """
    quiet = run.limits.quiet_ms / 1000
    end = min(time.monotonic() + bound_seconds, run.deadline)
    while True:
        run.close_popups()
        if run.stop_reason is not None:
            return False
        if run.quiet_seconds() >= quiet:
            return True
        now = time.monotonic()
        if now >= end:
            if now >= run.deadline:
                run.stop("wall-clock")
            return False
        page.wait_for_timeout(min(POLL_MS, max(1, int((end - now) * 1000))))


def scroll_to_end(page, run: PageRun) -> None:
    """Scroll down a screen at a time, waiting for quiet after each, until the end or a limit."""
    limits = run.limits
    where = page.evaluate(_MEASURE)
    while True:
        if where["y"] + where["vh"] >= where["h"] - 2:
            return  # the end of the page: nothing more appeared
        if where["y"] + where["vh"] >= limits.max_height_px:
            run.stop("height")
            return
        if run.scroll_steps >= limits.max_scroll_steps:
            run.stop("scroll-steps")
            return
        if run.left() <= 0:
            run.stop("wall-clock")
            return
        page.evaluate("() => window.scrollBy(0, window.innerHeight)")
        run.scroll_steps += 1
        run.touch()
        bound = limits.quiet_wait_seconds
        if run.busy:
            bound = min(bound, max(BUSY_STEP_SECONDS, 2 * limits.quiet_ms / 1000))
        wait_for_quiet(page, run, bound)
        if run.stop_reason is not None:
            return
        before, where = where, page.evaluate(_MEASURE)
        if where["y"] == before["y"] and where["h"] == before["h"]:
            return  # the page does not scroll (overflow hidden, an inner scroller): stop here
