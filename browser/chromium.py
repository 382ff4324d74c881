"""Debian's Chromium, headless, driven by Playwright's sync API: one bounded capture at a time.

``BrowserPool`` owns one Chromium process. Each ``render()`` gets a fresh browser context (a new
profile: no cookies or storage kept, no permissions, no service workers, no downloads), runs the
behaviours of browser/behaviours.py (wait for quiet, scroll to the end) and takes the rendered DOM,
a full-page screenshot and a thumbnail. Every capture is bounded by ``PageLimits``; a watchdog
thread kills the browser when Playwright itself does not come back in time. The browser is
restarted after a crash, a kill, or ``pages_per_browser`` pages, so one hostile page never stops
the next one.

Playwright runs on a thread of the pool's own (its sync API is bound to one thread), so a pool
may be called from any thread, one capture at a time.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from browser.behaviours import PageRun, scroll_to_end, wait_for_quiet
from browser.records import PageLimits, ProxyEndpoint, RenderedPage

log = logging.getLogger(__name__)

# What every Chromium of ours runs with, beside Playwright's own defaults (which already turn off
# extensions, breakpad, sync and first-run prompts). Each one closes a path a page could use to
# reach the network around the proxy, or keeps Chromium from phoning home.
CHROMIUM_SWITCHES = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",  # QUIC is UDP: it would not pass an HTTP proxy
    "--dns-prefetch-disable",
    # WebRTC may only use proxied traffic: no UDP of its own, no local addresses revealed.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--autoplay-policy=user-gesture-required",
    # Chromium sends loopback around any proxy unless told not to; nothing may go around ours.
    "--proxy-bypass-list=<-loopback>",
    "--no-first-run",
    "--disable-sync",
    "--mute-audio",
]
# Playwright turns Chromium's popup blocker off; ours keeps it on (popups that still open are
# closed as they appear, see behaviours.PageRun).
IGNORED_DEFAULT_SWITCHES = ["--disable-popup-blocking"]

LAUNCH_TIMEOUT_SECONDS = 60.0
CLOSE_TIMEOUT_SECONDS = 10.0
# A SIGTERM lets the browser process end its children itself (no orphans); SIGKILL follows.
TERM_GRACE_SECONDS = 3.0
# After the watchdog killed Chromium, how long the caller waits for Playwright to notice before it
# gives the driver thread up for lost and starts a new one.
ABANDON_SECONDS = 30.0


class BrowserUnavailable(RuntimeError):
    """Chromium could not be started at all (not installed, or it fails at launch)."""


@dataclass(frozen=True)
class SandboxDecision:
    """Whether Chromium runs inside its own sandbox here, and why (shown by the doctor)."""

    sandboxed: bool
    reason: str


def _running_as_root() -> bool:
    """True for uid 0, where Chromium refuses to start with its sandbox on."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


ROOT_REASON = (
    "running as root: Chromium refuses to start sandboxed as root, so it runs with --no-sandbox; "
    "run the worker as an unprivileged user to keep the sandbox"
)


def sandbox_status(executable: str) -> SandboxDecision:
    """Start Chromium once as the pool would and say whether its sandbox is on (for the doctor)."""
    if _running_as_root():
        return SandboxDecision(False, ROOT_REASON)

    def probe() -> SandboxDecision:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        try:
            browser = _launch(playwright, executable, sandboxed=True, marker="sandbox-probe")
            browser.close()
            return SandboxDecision(True, "Chromium's sandbox starts on this platform")
        except PlaywrightError as exc:
            return SandboxDecision(False, f"the sandbox cannot start here: {_first_line(exc)}")
        finally:
            playwright.stop()

    worker = PlaywrightThread("chromium-sandbox-probe")
    try:
        return worker.call(probe, timeout=LAUNCH_TIMEOUT_SECONDS * 2)
    finally:
        worker.stop()


class PlaywrightThread:
    """A thread of its own for Playwright's sync API, which is bound to the thread that started
    it and refuses to start where another sync Playwright already runs. Calls run there in turn."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            function, box, done = job
            try:
                box["value"] = function()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc
            done.set()

    def call(self, function, timeout: float | None = None):
        """Run ``function()`` on the thread; its result or exception. TimeoutError after
        ``timeout`` seconds (the function keeps running there)."""
        box: dict = {}
        done = threading.Event()
        self._jobs.put((function, box, done))
        if not done.wait(timeout):
            raise TimeoutError("the Playwright thread did not come back")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def stop(self, timeout: float = 5.0) -> None:
        """Let the thread end after its current call."""
        self._jobs.put(None)
        self._thread.join(timeout)


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (Playwright's are long)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__


def _launch(playwright, executable: str, *, sandboxed: bool, marker: str):
    """Launch one headless Chromium; ``marker`` is a switch that finds its processes in /proc."""
    return playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        chromium_sandbox=sandboxed,
        args=[*CHROMIUM_SWITCHES, f"--samizdat-browser={marker}"],
        ignore_default_args=IGNORED_DEFAULT_SWITCHES,
        timeout=LAUNCH_TIMEOUT_SECONDS * 1000,
    )


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _find_marked_process(marker: str) -> int | None:
    """The pid of the browser process launched with ``--samizdat-browser=<marker>``."""
    needle = f"--samizdat-browser={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if needle in argv and not any(arg.startswith(b"--type=") for arg in argv):
            return int(entry)
    return None


def live_processes_in_group(pgid: int) -> list[int]:
    """Pids of the running (not zombie) processes of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[2] == pgid and stat[0] != "Z":
                found.append(int(entry))
    return found


class BrowserPool:
    """One headless Chromium, restarted after a crash, a hang or ``pages_per_browser`` pages."""

    def __init__(
        self,
        executable: str,
        pages_per_browser: int = 50,
        *,
        snapshot_seconds: float = 20.0,
        watchdog_margin_seconds: float = 10.0,
    ) -> None:
        """``snapshot_seconds`` bounds taking the DOM and screenshot once behaviours stop; the
        watchdog kills the browser at ``wall_seconds + snapshot_seconds + margin``."""
        self.executable = executable
        self.pages_per_browser = max(1, pages_per_browser)
        self.snapshot_seconds = snapshot_seconds
        self.watchdog_margin_seconds = watchdog_margin_seconds
        self.sandbox: SandboxDecision | None = None
        self.launches = 0
        self.process_groups: list[int] = []  # every browser's group, for leak checks
        self._playwright = None
        self._browser = None
        self._pgid: int | None = None
        self._pages_here = 0
        self._broken = False  # crashed, killed or disconnected: relaunch before the next page
        self._lock = threading.Lock()
        self._worker: PlaywrightThread | None = None
        self._render_lock = threading.Lock()  # one capture at a time: the watchdog is per page
        self._watchdog_hit = False
        self._driver_pid: int | None = None

    # -- the browser process ------------------------------------------------------------------

    def _start(self) -> None:
        """Launch Chromium: sandboxed where the platform allows it, else say why not."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        if self._playwright is None:
            self._playwright = sync_playwright().start()
        marker = uuid.uuid4().hex
        try:
            if _running_as_root():
                decision = SandboxDecision(False, ROOT_REASON)
                browser = _launch(self._playwright, self.executable, sandboxed=False, marker=marker)
            else:
                try:
                    browser = _launch(
                        self._playwright, self.executable, sandboxed=True, marker=marker
                    )
                    decision = SandboxDecision(True, "Chromium's sandbox is on")
                except PlaywrightError as exc:
                    decision = SandboxDecision(
                        False, f"the sandbox cannot start here ({_first_line(exc)}): --no-sandbox"
                    )
                    log.warning("browser: %s", decision.reason)
                    browser = _launch(
                        self._playwright, self.executable, sandboxed=False, marker=marker
                    )
        except PlaywrightError as exc:
            raise BrowserUnavailable(
                f"cannot start Chromium at {self.executable}: {_first_line(exc)}"
            ) from exc
        self.sandbox = decision
        self._browser = browser
        browser.on("disconnected", lambda _browser: self._mark_broken())
        pid = _find_marked_process(marker)
        # Playwright starts Chromium as the leader of its own process group (so do we kill it).
        self._pgid = pid if pid and (_proc_stat(pid) or ("", 0, 0))[2] == pid else None
        if self._pgid:
            self.process_groups.append(self._pgid)
        # Playwright's driver (node) is the browser's parent: killed too if it ever stops answering.
        self._driver_pid = (_proc_stat(pid) or ("", 0, 0))[1] if pid else None
        self._pages_here = 0
        self._broken = False
        self.launches += 1

    def _mark_broken(self) -> None:
        """Called when the browser disconnects (crash or kill): relaunch before the next page."""
        self._broken = True

    def kill(self) -> None:
        """End the browser's processes now, whatever Playwright is doing (safe from any thread)."""
        with self._lock:
            pgid = self._pgid
            self._broken = True
        if pgid:
            self._kill_group(pgid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        """SIGTERM the browser process (it ends its children), then SIGKILL what is left."""
        try:
            os.kill(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + TERM_GRACE_SECONDS
        while time.monotonic() < deadline and live_processes_in_group(pgid):
            time.sleep(0.1)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _stop_browser(self) -> None:
        """Close the browser (killing it if close does not return in time)."""
        browser, pgid = self._browser, self._pgid
        self._browser = None
        if browser is not None:
            timer = threading.Timer(CLOSE_TIMEOUT_SECONDS, self.kill)
            timer.daemon = True
            timer.start()
            try:
                browser.close()
            except Exception as exc:  # noqa: BLE001 - a dead browser may fail to close
                log.info("browser: close failed (%s); killing it", _first_line(exc))
            finally:
                timer.cancel()
        if pgid and live_processes_in_group(pgid):
            self.kill()
        self._pgid = None

    def _close_here(self) -> None:
        """On the Playwright thread: stop the browser, then the driver."""
        self._stop_browser()
        if self._playwright is not None:
            try:
                self._playwright.stop()
            except Exception as exc:  # noqa: BLE001 - the driver may be gone already
                log.info("browser: playwright stop failed: %s", _first_line(exc))
            self._playwright = None

    def close(self) -> None:
        """Stop the browser and Playwright's driver; no Chromium process outlives this."""
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                worker.call(self._close_here, timeout=CLOSE_TIMEOUT_SECONDS + ABANDON_SECONDS)
            except TimeoutError:
                log.warning("browser: the Playwright thread did not close in time")
            worker.stop()
        for group in self.process_groups:
            if live_processes_in_group(group):
                self._kill_group(group)

    def __enter__(self) -> BrowserPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- one capture ----------------------------------------------------------------------------

    def render(
        self, url: str, proxy: ProxyEndpoint | None, limits: PageLimits, user_agent: str
    ) -> RenderedPage:
        """Load ``url`` in a fresh profile, run the behaviours and take DOM and screenshots.

        Page-made trouble (a hang, a crash, a limit) never raises: the page comes back with what
        it had and ``ended_by`` says why. Raises ``BrowserUnavailable`` if Chromium cannot start
        and ValueError for a URL that is not http(s).
        """
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"the browser captures http(s) URLs only, not {url[:80]!r}")
        with self._render_lock:
            return self._render_on_worker(url, proxy, limits, user_agent)

    def _render_on_worker(
        self, url: str, proxy: ProxyEndpoint | None, limits: PageLimits, user_agent: str
    ) -> RenderedPage:
        """Hand one capture to the Playwright thread and wait for it, within its bounds."""
        if self._worker is None:
            self._worker = PlaywrightThread("chromium-pool")
        budget = (
            limits.wall_seconds + self.snapshot_seconds + self.watchdog_margin_seconds
            + TERM_GRACE_SECONDS + ABANDON_SECONDS
        )
        try:
            return self._worker.call(
                lambda: self._render_here(url, proxy, limits, user_agent), timeout=budget
            )
        except TimeoutError:
            # Even the killed browser did not bring Playwright back: give its thread and driver
            # up and start afresh next time (the thread ends when Playwright finally returns).
            log.error("browser: Playwright did not return after the browser was killed")
            self.kill()
            driver = self._driver_pid
            if driver and (_proc_stat(driver) or ("", 0, 0))[1] == os.getpid():  # still ours
                try:
                    os.kill(driver, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._worker.stop(timeout=0)
            self._worker, self._playwright, self._browser, self._pgid = None, None, None, None
            self._driver_pid = None
            return RenderedPage(
                final_url=url, status=None, dom_html="", screenshot_png=b"", thumbnail_png=b"",
                ended_by="wall-clock",
                notes=["the browser did not come back in time and was killed; driver abandoned"],
            )

    def _render_here(
        self, url: str, proxy: ProxyEndpoint | None, limits: PageLimits, user_agent: str
    ) -> RenderedPage:
        """On the Playwright thread: one capture (see ``render``)."""
        if self._browser is None or self._broken or self._pages_here >= self.pages_per_browser:
            self._stop_browser()
            self._start()
        self._pages_here += 1
        started = time.monotonic()
        watchdog = threading.Timer(
            limits.wall_seconds + self.snapshot_seconds + self.watchdog_margin_seconds,
            self._watchdog_fired,
        )
        watchdog.daemon = True
        self._watchdog_hit = False
        run = PageRun(limits, started)
        result = RenderedPage(final_url=url, status=None, dom_html="", screenshot_png=b"",
                              thumbnail_png=b"")
        if self.sandbox and not self.sandbox.sandboxed:
            result.notes.append(f"no sandbox: {self.sandbox.reason}")
        if proxy is not None:
            result.notes.append(
                "TLS: the recording proxy re-signs every site; the browser accepts its "
                "certificates and certificate errors are ignored"
            )
        context = None
        watchdog.start()
        try:
            context = self._new_context(proxy, limits, user_agent)
            self._capture(context, url, limits, run, result)
        except Exception as exc:  # noqa: BLE001 - whatever the page did, the next one must run
            if self._watchdog_hit:
                result.ended_by = "wall-clock"
                result.notes.append("the browser did not come back in time and was killed")
            elif run.stop_reason == "crash" or self._broken:
                result.ended_by = "crash"
                result.notes.append(f"the browser crashed: {_first_line(exc)}")
                self._broken = True
            else:
                result.ended_by = result.ended_by or "error"
                result.notes.append(f"capture failed: {_first_line(exc)}")
        finally:
            watchdog.cancel()
            if context is not None and not self._broken:
                try:
                    context.close()
                except Exception:  # noqa: BLE001 - a context of a dead browser
                    self._broken = True
        if run.stop_reason == "crash":
            self._broken = True
        result.scroll_steps = run.scroll_steps
        result.popups_closed = run.popups_closed
        if run.dialogs_dismissed:
            result.notes.append(f"{run.dialogs_dismissed} dialogs dismissed")
        result.notes.append(f"{time.monotonic() - started:.1f} s")
        return result

    def _watchdog_fired(self) -> None:
        """The page outlived wall-clock + snapshot + margin: Playwright is stuck, kill Chromium."""
        self._watchdog_hit = True
        log.warning("browser: a page outlived its wall-clock limit; killing the browser")
        self.kill()

    def _new_context(self, proxy: ProxyEndpoint | None, limits: PageLimits, user_agent: str):
        """A new, empty profile for one capture."""
        options = {
            "user_agent": user_agent,
            "viewport": {"width": limits.viewport_width, "height": limits.viewport_height},
            "device_scale_factor": 1,
            "permissions": [],
            "accept_downloads": False,
            "service_workers": "block",
            "java_script_enabled": True,
        }
        if proxy is not None:
            # Everything through the proxy, loopback included (see ProxyEndpoint.BYPASS).
            options["proxy"] = proxy.playwright_proxy
            # The proxy is ours: it terminates TLS and signs for every site with a CA made for
            # this capture, so the browser accepts its certificates rather than trusting a CA
            # (Chromium on Linux reads CAs only from an NSS database, and warcprox signs names,
            # never IP addresses). Without our proxy, certificate errors stay errors.
            options["ignore_https_errors"] = True
        return self._browser.new_context(**options)

    def _capture(self, context, url: str, limits: PageLimits, run: PageRun, result: RenderedPage):
        """Navigate, run the behaviours, then take the DOM and the screenshots into ``result``."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        run.watch(context)
        page = context.new_page()
        run.watch_page(page)
        try:
            response = page.goto(url, wait_until="commit", timeout=max(1.0, run.left()) * 1000)
        except PlaywrightTimeout:
            result.ended_by = "wall-clock"
            return
        if response is not None:
            result.status = response.status
        result.final_url = page.url
        quiet = wait_for_quiet(page, run, limits.quiet_wait_seconds)
        if not quiet and run.stop_reason is None:
            run.busy = True
        if run.stop_reason is None and run.left() > 0:
            # An early DOM, kept if scrolling hangs the page.
            result.dom_html = page.content()
            scroll_to_end(page, run)
        result.ended_by = run.stop_reason or ("quiet-wait" if run.busy else None)
        result.final_url = page.url
        if result.ended_by == "crash":
            return
        self._snapshot(page, limits, result)

    def _snapshot(self, page, limits: PageLimits, result: RenderedPage) -> None:
        """The rendered DOM, a full-page PNG clipped at max_height_px, and a thumbnail."""
        result.dom_html = page.content()
        height = page.evaluate(
            "() => Math.max(document.documentElement.scrollHeight,"
            " document.body ? document.body.scrollHeight : 0)"
        )
        height = max(1, min(int(height or 1), limits.max_height_px))
        page.evaluate("() => window.scrollTo(0, 0)")
        result.screenshot_png = page.screenshot(
            full_page=True,
            clip={"x": 0, "y": 0, "width": limits.viewport_width, "height": height},
            timeout=self.snapshot_seconds * 1000,
            animations="disabled",
        )
        # The thumbnail is made from the first screen alone: decoding a 20,000 px PNG to shrink
        # its top would cost a hundred megabytes.
        first_screen = page.screenshot(timeout=self.snapshot_seconds * 1000, animations="disabled")
        result.thumbnail_png = make_thumbnail(first_screen, limits.thumbnail_width)


def make_thumbnail(png: bytes, width: int) -> bytes:
    """A PNG scaled to ``width`` pixels wide (aspect kept), as PNG.

    The pool passes the page's first screen, not the whole page: a 20,000 px page shrunk to 320 px
    wide is a strip.
    """
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        height = max(1, round(image.height * width / image.width))
        small = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def default_chromium() -> str | None:
    """Debian's Chromium if it is installed, else None (callers fall back to plain HTTP)."""
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return None
