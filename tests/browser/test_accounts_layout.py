"""The account pages in a real Chromium: they fit a 360 px phone screen, admin menu included."""

from __future__ import annotations

from accounts.users import issue_token
from tests.browser.test_archive_layout import PHONE, overflow
from tests.conftest import create_account, make_settings

import pytest


@pytest.fixture
def settings(tmp_path, sqlite_url):
    """SQLite only: the layout does not depend on the database."""
    return make_settings(tmp_path, sqlite_url)


def test_account_pages_fit_a_360_px_screen(app, live_server, page, browser_login):
    long_name = "a.rather.long.archivist.name@" + "example" * 8 + ".org"
    user = create_account(app, long_name[:100])
    with app.extensions["samizdat"].Session() as session:
        issue_token(session, session.merge(user), "a-rather-long-token-label-for-the-import-script")
        session.commit()
    page.set_viewport_size(PHONE)
    browser_login(page, "boss", "admin")
    for path in ("/manage/users", "/manage/audit", "/manage/account"):
        page.goto(live_server.url(path))
        assert page.evaluate("() => window.innerWidth") == 360
        assert overflow(page) <= 0, f"{path} is {overflow(page)} px wider than a 360 px screen"
