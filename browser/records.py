"""The records that cross between the recording proxy, the Chromium driver and their caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProxyEndpoint:
    """Where Chromium sends every request: the recording proxy, and the CA it signs TLS with."""

    host: str
    port: int
    ca_cert_path: Path | None = None

    @property
    def server(self) -> str:
        """The proxy as Chromium's ``--proxy-server`` / Playwright's ``proxy.server`` wants it."""
        return f"http://{self.host}:{self.port}"

    # Chromium sends loopback straight out, past any proxy, unless the bypass list says
    # "<-loopback>": without it a page could reach 127.0.0.1 unguarded.
    BYPASS = "<-loopback>"

    @property
    def playwright_proxy(self) -> dict[str, str]:
        """Playwright's ``proxy=`` for a context or a launch: everything through the proxy."""
        return {"server": self.server, "bypass": self.BYPASS}

    @property
    def chromium_args(self) -> list[str]:
        """The same as Chromium command-line switches."""
        return [f"--proxy-server={self.server}", f"--proxy-bypass-list={self.BYPASS}"]


@dataclass(frozen=True)
class PageLimits:
    """Bounds of one browser capture; whichever is reached first ends it, with what it has."""

    wall_seconds: float = 60.0        # whole page, independent of data arriving
    quiet_ms: int = 500               # network quiet this long counts as "loaded"
    quiet_wait_seconds: float = 15.0  # but never wait for quiet longer than this
    max_scroll_steps: int = 40
    max_height_px: int = 20_000       # scrolling and the screenshot stop here
    viewport_width: int = 1280
    viewport_height: int = 900
    thumbnail_width: int = 320
    max_popups: int = 20              # popups are closed as they open; more than this ends it
    max_dialogs: int = 20             # alert/confirm/prompt are dismissed; more than this ends it


@dataclass
class RenderedPage:
    """What Chromium saw: the final URL and status, the rendered DOM, the screenshot."""

    final_url: str
    status: int | None
    dom_html: str
    screenshot_png: bytes
    thumbnail_png: bytes
    # None when the page finished; else what ended it: "wall-clock", "quiet-wait" (the network
    # never went quiet), "scroll-steps", "height", "popups", "dialogs", "crash" or "error".
    ended_by: str | None = None
    scroll_steps: int = 0
    popups_closed: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProxyLimits:
    """Bounds the recording proxy enforces for one capture."""

    max_requests: int = 500
    max_bytes: int = 50 * 1024 * 1024       # all responses together, as sent on the wire
    max_response_bytes: int = 20 * 1024 * 1024
    max_response_seconds: float = 60.0      # one upstream fetch, however slowly bytes arrive


@dataclass
class ProxyStats:
    """What the recording proxy did for one capture."""

    requests: int = 0
    bytes: int = 0
    refused: list[str] = field(default_factory=list)  # "host:port reason", never fetched
    ended_by: str | None = None                         # a ProxyLimits bound that was reached
    refused_count: int = 0                              # all refusals (``refused`` keeps 200)
    truncated: list[str] = field(default_factory=list)  # "url length": cut at the byte bound
