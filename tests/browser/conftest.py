"""Browser fixtures: one real Chromium per session (Debian's, driven by Playwright) and the app
served for real by werkzeug on a loopback port.

Nothing is skipped: when Chromium cannot start, the fixture fails with the reason. The session's
Chromium (``chromium``) and the app fixture are the ones in tests/conftest.py, shared with the
embed's browser tests, so a test module chooses its settings (and database) as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

@dataclass
class LiveServer:
    """An app served over real HTTP on 127.0.0.1 from a background thread."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.server.server_port}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the per-request log line (the tests read responses instead)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def serve(app: Flask) -> LiveServer:
    """Start serving ``app`` on a free loopback port; stop it with ``server.shutdown()``."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveServer(server, thread)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    """The test's ``app`` served over real HTTP for as long as the test runs."""
    live = serve(app)
    yield live
    live.server.shutdown()
    live.server.server_close()


@dataclass
class BrowserLog:
    """What a page reported while the test ran: console messages and uncaught errors."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def browser_log() -> BrowserLog:
    """Filled by the ``page`` fixture as the page runs."""
    return BrowserLog()


@pytest.fixture
def browser_context(chromium):
    """A fresh browser profile (no cookies, no cache) for one test."""
    context = chromium.new_context()
    yield context
    context.close()


@pytest.fixture
def page(browser_context, browser_log: BrowserLog):
    """A new tab in the test's profile whose console and errors land in ``browser_log``."""
    tab = browser_context.new_page()
    tab.on("console", lambda message: browser_log.console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: browser_log.errors.append(str(error)))
    yield tab
    tab.close()


@pytest.fixture
def browser_login(app, live_server):
    """``browser_login(page, name)`` creates archivist ``name`` and logs the tab in by the form."""
    from tests.conftest import TEST_PASSWORD, create_account

    def log_in(tab, name: str = "ana", role: str = "archivist") -> None:
        create_account(app, name, role)
        tab.goto(live_server.url("/login"))
        tab.fill("#name", name)
        tab.fill("#password", TEST_PASSWORD)
        with tab.expect_navigation():
            tab.click("button[type=submit]")
        assert "/login" not in tab.url, tab.content()

    return log_in
