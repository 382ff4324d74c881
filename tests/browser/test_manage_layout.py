"""The archivist's jobs and sources pages in a real Chromium at 360 px: one card per row, URLs
wrapping at the screen's width rather than every few characters, every cell named."""

from __future__ import annotations

import pytest

from mirror.jobs import enqueue
from mirror.sources import add_source
from tests.browser.test_archive_layout import LONG_URL, PHONE, overflow
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path, sqlite_url):
    """SQLite only: the layout does not depend on the database."""
    return make_settings(tmp_path, sqlite_url)


def test_jobs_and_sources_are_cards_at_360_px_with_labelled_cells(app, live_server, page, browser_login):
    with app.extensions["samizdat"].Session() as session:
        source = add_source(session, LONG_URL, 60).source
        session.flush()
        enqueue(session, source.id, "manual")
        session.commit()
    page.set_viewport_size(PHONE)
    browser_login(page, "ana")
    page.goto(live_server.url("/manage/jobs"))
    assert overflow(page) <= 0
    cells = page.evaluate("""() => [...document.querySelectorAll('table.cards tbody td')].map(td => {
        const box = td.getBoundingClientRect();
        return {label: td.dataset.label, left: box.left, right: box.right, width: box.width,
                before: getComputedStyle(td, '::before').content};
    })""")
    assert [c["label"] for c in cells] == ["#", "Source", "State", "Trigger", "Requested by", "Created",
                                          "Started", "Finished", "Duration", "Bytes", "Reason"]
    # No column cut at the screen's edge, and the URL gets the screen's width (not a sliver).
    assert all(c["left"] >= 0 and c["right"] <= 360 for c in cells), cells
    assert next(c for c in cells if c["label"] == "Source")["width"] > 300
    assert all(c["before"] == f'"{c["label"]}: "' for c in cells)

    page.goto(live_server.url("/manage/sources"))
    assert overflow(page) <= 0
    labelled = page.evaluate("""() => [...document.querySelectorAll('table.cards tbody td[data-label]')]
        .map(td => getComputedStyle(td, '::before').content.replaceAll('"', '') + td.innerText.trim())""")
    assert "State: active" in labelled and "Last capture: never" in labelled
    assert "Capture: auto" in labelled
