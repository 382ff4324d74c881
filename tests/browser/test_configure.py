"""browser.configure and the SAMIZDAT_BROWSER_* settings: one loader validates them with one-line
errors, one function maps them onto the proxy's and the page's limits, and Chromium is found on
PATH or where SAMIZDAT_CHROMIUM says."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from browser.configure import browser_limits, chromium_for_capture, find_chromium
from config.settings import SettingsError, load_settings


def test_browser_capture_defaults_to_one_page_at_a_time_within_the_records_defaults():
    settings = load_settings({})
    page, proxy = browser_limits(settings)
    assert settings.browser_concurrency == 1 and settings.browser_pages_per_process == 50
    assert (page.wall_seconds, page.max_scroll_steps, page.max_height_px) == (60.0, 40, 20_000)
    assert (proxy.max_requests, proxy.max_bytes) == (500, 50 * 1024 * 1024)
    # One response is never allowed more than the HTTP fetcher takes of a page.
    assert proxy.max_response_bytes == settings.fetch_max_bytes
    assert proxy.max_response_seconds == settings.fetch_timeout == 60.0


def test_every_browser_limit_reaches_its_record():
    settings = load_settings({
        "SAMIZDAT_BROWSER_CONCURRENCY": "3",
        "SAMIZDAT_BROWSER_WALL_SECONDS": "10",
        "SAMIZDAT_BROWSER_SCROLL_STEPS": "7",
        "SAMIZDAT_BROWSER_MAX_HEIGHT": "4000",
        "SAMIZDAT_BROWSER_MAX_REQUESTS": "90",
        "SAMIZDAT_BROWSER_MAX_BYTES": str(2 * 1024 * 1024),
        "SAMIZDAT_BROWSER_PAGES_PER_PROCESS": "5",
    })
    page, proxy = browser_limits(settings)
    assert (settings.browser_concurrency, settings.browser_pages_per_process) == (3, 5)
    assert (page.wall_seconds, page.max_scroll_steps, page.max_height_px) == (10.0, 7, 4000)
    # Waiting for the network to go quiet leaves half the wall-clock to scrolling.
    assert page.quiet_wait_seconds == 5.0
    assert (proxy.max_requests, proxy.max_bytes, proxy.max_response_bytes) == (
        90, 2 * 1024 * 1024, 2 * 1024 * 1024)
    assert proxy.max_response_seconds == 10.0  # never past the page's own wall-clock


@pytest.mark.parametrize("name, value, message", [
    ("BROWSER_CONCURRENCY", "0", "SAMIZDAT_BROWSER_CONCURRENCY must be positive, got '0'"),
    ("BROWSER_CONCURRENCY", "65", "SAMIZDAT_BROWSER_CONCURRENCY must be between 1 and 64, got 65"),
    ("BROWSER_WALL_SECONDS", "soon", "SAMIZDAT_BROWSER_WALL_SECONDS must be a number, got 'soon'"),
    ("BROWSER_WALL_SECONDS", "7200",
     "SAMIZDAT_BROWSER_WALL_SECONDS must be between 1 and 3600 seconds, got 7200"),
    ("BROWSER_SCROLL_STEPS", "100000",
     "SAMIZDAT_BROWSER_SCROLL_STEPS must be between 1 and 10000, got 100000"),
    ("BROWSER_MAX_HEIGHT", "100000",
     "SAMIZDAT_BROWSER_MAX_HEIGHT must be between 1000 and 50000 pixels, got 100000"),
    ("BROWSER_MAX_REQUESTS", "-1", "SAMIZDAT_BROWSER_MAX_REQUESTS must be positive, got '-1'"),
    ("BROWSER_MAX_BYTES", "1000",
     "SAMIZDAT_BROWSER_MAX_BYTES must be between 1048576 and 4294967296 bytes, got 1000"),
    ("BROWSER_PAGES_PER_PROCESS", "1.5",
     "SAMIZDAT_BROWSER_PAGES_PER_PROCESS must be a number, got '1.5'"),
])
def test_a_bad_browser_setting_is_refused_in_one_line_naming_it(name, value, message):
    with pytest.raises(SettingsError) as refused:
        load_settings({f"SAMIZDAT_{name}": value})
    assert str(refused.value) == message


def fake_chromium(directory, name="chromium"):
    """An executable file named like Chromium (what PATH lookup looks for; it is never run)."""
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_chromium_is_found_on_path_under_either_debian_name(tmp_path):
    settings = load_settings({})
    assert find_chromium(settings, search_path=str(tmp_path)) is None
    browser = fake_chromium(tmp_path, "chromium-browser")
    assert find_chromium(settings, search_path=str(tmp_path)) == browser.resolve()
    preferred = fake_chromium(tmp_path, "chromium")
    assert find_chromium(settings, search_path=str(tmp_path)) == preferred.resolve()


def test_samizdat_chromium_names_the_executable_by_path_or_by_name(tmp_path):
    elsewhere = tmp_path / "opt"
    elsewhere.mkdir()
    own = fake_chromium(elsewhere, "chrome")
    by_path = load_settings({"SAMIZDAT_CHROMIUM": str(own)})
    assert find_chromium(by_path, search_path="") == own.resolve()
    by_name = load_settings({"SAMIZDAT_CHROMIUM": "chrome"})
    assert find_chromium(by_name, search_path=str(elsewhere)) == own.resolve()
    # Named but absent: never some other Chromium found on PATH instead.
    fake_chromium(tmp_path)
    missing = load_settings({"SAMIZDAT_CHROMIUM": str(tmp_path / "nowhere")})
    assert find_chromium(missing, search_path=str(tmp_path)) is None


def test_the_debian_chromium_the_tests_use_is_found():
    # `make test` installs it (`make chromium`); the browser tests drive this one.
    assert find_chromium(load_settings({})) is not None
    assert os.access(find_chromium(load_settings({})), os.X_OK)


def test_a_missing_chromium_is_warned_about_once_per_process_not_per_capture(tmp_path, caplog):
    settings = load_settings({"SAMIZDAT_CHROMIUM": str(tmp_path / "no-chromium-here")})
    with caplog.at_level(logging.WARNING, logger="browser.configure"):
        for _ in range(5):
            assert chromium_for_capture(settings) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "browser.configure"]
    assert warnings == [
        f"SAMIZDAT_CHROMIUM={tmp_path / 'no-chromium-here'} is not an executable file: "
        "auto falls back to http, browser sources cannot be captured"
    ]
