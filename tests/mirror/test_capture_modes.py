"""Capture modes (issue #16): every way a source enters or changes — the JSON API, the CLI, the
archivist's forms, the CSV import — takes http, browser or auto (the default) through one check,
refuses anything else with one line (never a 500), and shows the mode; captures show their method."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from mirror.models import Capture, Source
from tests.conftest import create_account, make_settings

BAD_MODES = ["HTTP", "Browser", "", "chrome", " auto", None, 1, True, ["auto"]]


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only: nothing is captured here."""
    return make_settings(tmp_path, database_url)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def stored(app, url: str) -> Source:
    with app.extensions["samizdat"].Session() as session:
        source = session.scalar(select(Source).where(Source.url == url))
        session.expunge_all()
        return source


# --- The JSON API ---


def test_a_source_added_without_a_mode_is_auto(app, client, archivist_token):
    created = client.post("/api/sources", json={"url": "https://example.org/a"},
                          headers=bearer(archivist_token))
    assert created.status_code == 201
    assert created.get_json()["capture_mode"] == "auto"
    assert stored(app, "https://example.org/a").capture_mode == "auto"


@pytest.mark.parametrize("mode", ["http", "browser", "auto"])
def test_the_api_adds_and_lists_a_source_with_its_mode(app, client, archivist_token, mode):
    created = client.post("/api/sources", json={"url": "https://example.org/a", "capture_mode": mode},
                          headers=bearer(archivist_token))
    assert created.status_code == 201 and created.get_json()["capture_mode"] == mode
    listed = client.get("/api/sources").get_json()["items"]
    assert [s["capture_mode"] for s in listed] == [mode]


@pytest.mark.parametrize("mode", BAD_MODES)
def test_the_api_refuses_a_bad_mode_in_one_line_and_adds_nothing(app, client, archivist_token, mode):
    refused = client.post("/api/sources", json={"url": "https://example.org/a", "capture_mode": mode},
                          headers=bearer(archivist_token))
    assert refused.status_code == 400
    message = refused.get_json()["error"]
    assert message.startswith("capture mode must be one of auto, http, browser, got ") and "\n" not in message
    assert client.get("/api/sources").get_json()["total"] == 0


def test_the_api_changes_a_mode_and_the_audit_log_records_it(app, client, archivist_token, admin_token):
    source_id = client.post("/api/sources", json={"url": "https://example.org/a"},
                            headers=bearer(archivist_token)).get_json()["id"]
    changed = client.patch(f"/api/sources/{source_id}", json={"capture_mode": "browser"},
                           headers=bearer(archivist_token))
    assert changed.status_code == 200 and changed.get_json()["capture_mode"] == "browser"
    edit = client.get("/api/audit?action=source.edit", headers=bearer(admin_token)).get_json()["items"][0]
    assert edit["detail"]["capture_mode"] == ["auto", "browser"]
    for mode in BAD_MODES:
        refused = client.patch(f"/api/sources/{source_id}", json={"capture_mode": mode},
                               headers=bearer(archivist_token))
        assert refused.status_code == 400, mode
    assert stored(app, "https://example.org/a").capture_mode == "browser"


def test_adding_a_known_page_again_keeps_its_mode(app, client, archivist_token):
    client.post("/api/sources", json={"url": "https://example.org/a", "capture_mode": "http"},
                headers=bearer(archivist_token))
    again = client.post("/api/sources", json={"url": "https://example.org/a", "capture_mode": "browser"},
                        headers=bearer(archivist_token))
    assert again.status_code == 200 and again.get_json()["capture_mode"] == "http"


def test_each_capture_shows_how_it_was_made_and_whether_a_limit_ended_it(app, client, archivist_token):
    with app.extensions["samizdat"].Session() as session:
        source = Source(url="https://example.org/app", interval_minutes=60)
        session.add(source)
        session.flush()
        session.add_all([
            Capture(source_id=source.id, status="failed", url=source.url),  # before #16
            Capture(source_id=source.id, status="failed", url=source.url, capture_method="http"),
            Capture(source_id=source.id, status="failed", url=source.url, capture_method="browser",
                    method_reason='an empty app root <div id="root"> beside 1 script',
                    limited_by="wall-clock"),
        ])
        session.commit()
        source_id = source.id
    items = client.get(f"/api/sources/{source_id}/captures").get_json()["items"]
    shapes = sorted((c["id"], c["capture_method"], c["method_reason"], c["limited_by"]) for c in items)
    assert shapes == [
        (1, None, None, None),
        (2, "http", None, None),
        (3, "browser", 'an empty app root <div id="root"> beside 1 script', "wall-clock"),
    ]


# --- The CLI ---


def test_the_cli_adds_a_source_with_its_mode(app, cli):
    result = cli.invoke(args=["sources", "add", "https://example.org/a", "--mode", "browser"])
    assert result.exit_code == 0, result.output
    assert "(capture mode browser)" in result.output
    assert stored(app, "https://example.org/a").capture_mode == "browser"
    default = cli.invoke(args=["sources", "add", "https://example.org/b"])
    assert "(capture mode auto)" in default.output
    listed = cli.invoke(args=["sources", "list"]).output
    assert re.search(r"browser\s+https://example.org/a", listed) and re.search(r"auto\s+https://example.org/b", listed)


@pytest.mark.parametrize("mode", ["HTTP", "", "chrome"])
def test_the_cli_refuses_a_bad_mode_in_one_line(app, cli, mode):
    result = cli.invoke(args=["sources", "add", "https://example.org/a", "--mode", mode])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: capture mode must be one of auto, http, browser, got {mode!r}"
    ]
    assert stored(app, "https://example.org/a") is None


# --- The CSV import (API, page and CLI all go through import_sources) ---

CITIZENLAB = (
    "url,category_code,category_description,date_added,source,notes\n"
    "https://news.example/a,NEWS,News Media,2020-01-01,citizenlab,\n"
    "https://app.example/b,HUMR,Human Rights Issues,2020-01-01,citizenlab,\n"
)


def test_an_import_gives_its_new_sources_the_chosen_mode_and_keeps_known_ones(app, client, archivist_token):
    client.post("/api/sources", json={"url": "https://news.example/a", "capture_mode": "http"},
                headers=bearer(archivist_token))
    done = client.post("/api/sources/import", headers=bearer(archivist_token), data={
        "file": (io.BytesIO(CITIZENLAB.encode()), "vn.csv"), "capture_mode": "browser"})
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["added"], done.get_json()["already_present"]) == (1, 1)
    assert stored(app, "https://app.example/b").capture_mode == "browser"
    assert stored(app, "https://news.example/a").capture_mode == "http"  # known: unchanged


def test_a_country_list_imports_as_auto_by_default(app, client, archivist_token):
    done = client.post("/api/sources/import", headers=bearer(archivist_token),
                       data={"file": (io.BytesIO(CITIZENLAB.encode()), "vn.csv")})
    assert done.get_json()["added"] == 2
    assert stored(app, "https://app.example/b").capture_mode == "auto"


def test_a_capture_mode_column_sets_the_mode_row_by_row(app, client, archivist_token):
    csv = ("url,category_code,category_description,date_added,source,notes,capture_mode\n"
           "https://news.example/a,NEWS,News Media,2020-01-01,x,,http\n"
           "https://app.example/b,NEWS,News Media,2020-01-01,x,,\n"
           "https://bad.example/c,NEWS,News Media,2020-01-01,x,,Browser\n")
    done = client.post("/api/sources/import", headers=bearer(archivist_token), data={
        "file": (io.BytesIO(csv.encode()), "list.csv"), "capture_mode": "browser"}).get_json()
    assert done["added"] == 2 and done["invalid_count"] == 1
    assert done["invalid"] == [{"line": 4, "reason": "capture mode must be one of auto, http, browser, got 'Browser'"}]
    assert stored(app, "https://news.example/a").capture_mode == "http"
    assert stored(app, "https://app.example/b").capture_mode == "browser"  # empty cell: the import's
    plain = "url,capture_mode\nhttps://plain.example/d,browser\n"
    client.post("/api/sources/import", headers=bearer(archivist_token),
                data={"file": (io.BytesIO(plain.encode()), "mine.csv")})
    assert stored(app, "https://plain.example/d").capture_mode == "browser"


@pytest.mark.parametrize("mode", ["HTTP", "", "chrome"])
def test_an_import_with_a_bad_mode_is_refused_whole(app, client, archivist_token, mode):
    refused = client.post("/api/sources/import", headers=bearer(archivist_token), data={
        "file": (io.BytesIO(CITIZENLAB.encode()), "vn.csv"), "capture_mode": mode})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == f"capture mode must be one of auto, http, browser, got {mode!r}"
    assert client.get("/api/sources").get_json()["total"] == 0


def test_the_cli_imports_with_a_mode(app, cli, tmp_path):
    path = tmp_path / "vn.csv"
    path.write_text(CITIZENLAB)
    bad = cli.invoke(args=["sources", "import", str(path), "--mode", "Browser"])
    assert bad.exit_code == 1 and "capture mode must be one of auto, http, browser" in bad.output
    result = cli.invoke(args=["sources", "import", str(path), "--mode", "http"])
    assert result.exit_code == 0, result.output
    assert stored(app, "https://app.example/b").capture_mode == "http"


# --- The archivist's pages (with the session's CSRF token, as the browser sends it) ---


@pytest.fixture
def ana(app, client, login) -> str:
    create_account(app, "ana")
    return login(client, "ana")


def test_the_add_form_sets_the_mode_and_the_list_shows_it(app, client, ana):
    page = client.get("/manage/sources").get_data(as_text=True)
    assert '<select name="capture_mode">' in page and '<option value="auto" selected>' in page
    added = client.post("/manage/sources", data={
        "csrf_token": ana, "url": "https://example.org/a", "capture_mode": "browser"})
    assert added.status_code == 303
    assert stored(app, "https://example.org/a").capture_mode == "browser"
    listing = client.get("/manage/sources").get_data(as_text=True)
    assert '<td data-label="Capture" class="mode">browser</td>' in listing
    assert re.search(r'<select id="mode-1" name="capture_mode">.*?<option value="browser" selected>',
                     listing, re.S)


@pytest.mark.parametrize("mode", ["HTTP", "", "chrome"])
def test_the_add_form_refuses_a_bad_mode_with_the_values_kept(app, client, ana, mode):
    refused = client.post("/manage/sources", data={
        "csrf_token": ana, "url": "https://example.org/a", "capture_mode": mode})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "capture mode must be one of auto, http, browser" in page
    assert 'value="https://example.org/a"' in page
    assert stored(app, "https://example.org/a") is None


def test_the_edit_form_changes_the_mode_and_refuses_a_bad_one(app, client, ana):
    client.post("/manage/sources", data={"csrf_token": ana, "url": "https://example.org/a"})
    source_id = stored(app, "https://example.org/a").id
    edit = {"csrf_token": ana, "country": "VN", "collection": "", "every": "6h"}
    saved = client.post(f"/manage/sources/{source_id}/edit", data={**edit, "capture_mode": "http"})
    assert saved.status_code == 303
    assert stored(app, "https://example.org/a").capture_mode == "http"
    refused = client.post(f"/manage/sources/{source_id}/edit", data={**edit, "capture_mode": "HTTP"})
    assert refused.status_code == 400
    assert "capture mode must be one of" in refused.get_data(as_text=True)
    # A form without the field (a page opened before modes existed) leaves the mode alone.
    client.post(f"/manage/sources/{source_id}/edit", data=edit)
    assert stored(app, "https://example.org/a").capture_mode == "http"


def test_the_edit_form_needs_its_csrf_token(app, client, ana):
    client.post("/manage/sources", data={"csrf_token": ana, "url": "https://example.org/a"})
    source_id = stored(app, "https://example.org/a").id
    forged = client.post(f"/manage/sources/{source_id}/edit",
                         data={"every": "6h", "capture_mode": "browser"})
    assert forged.status_code == 403
    assert stored(app, "https://example.org/a").capture_mode == "auto"


def test_the_import_page_sets_the_mode_of_the_new_sources(app, client, ana):
    page = client.get("/manage/sources/import").get_data(as_text=True)
    assert '<select name="capture_mode">' in page
    done = client.post("/manage/sources/import", data={
        "csrf_token": ana, "capture_mode": "http",
        "file": (io.BytesIO(CITIZENLAB.encode()), "vn.csv")}, content_type="multipart/form-data")
    assert done.status_code == 200, done.get_data(as_text=True)
    assert stored(app, "https://app.example/b").capture_mode == "http"
    refused = client.post("/manage/sources/import", data={
        "csrf_token": ana, "capture_mode": "",
        "file": (io.BytesIO(b"https://other.example/\n"), "list.txt")}, content_type="multipart/form-data")
    assert refused.status_code == 400
    assert "capture mode must be one of" in refused.get_data(as_text=True)
    assert stored(app, "https://other.example/") is None


# --- The reader's capture page ---


def test_the_capture_page_says_how_the_copy_was_made_in_the_readers_language(app, client, archivist_token):
    auth = bearer(archivist_token)
    source_id = client.post("/api/sources", json={"url": "https://gone.example/a"}, headers=auth).get_json()["id"]
    uploaded = client.post(f"/api/sources/{source_id}/documents", headers=auth,
                           content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"<p>" + b"Words of the page. " * 20 + b"</p>"), "a.html")})
    capture_id = uploaded.get_json()["id"]
    # An uploaded document was made by neither method: the page says nothing of one.
    page = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    assert 'class="meta method"' not in page

    def set_method(method, limited_by=None):
        with app.extensions["samizdat"].Session() as session:
            capture = session.get(Capture, capture_id)
            capture.capture_method, capture.limited_by = method, limited_by
            session.commit()

    set_method("http")
    page = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    assert "Captured as the server sent it, without running the page's scripts." in page
    set_method("browser", "wall-clock")
    page = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    assert "Captured in a web browser" in page
    assert "did not finish loading within the archive's limits" in page
    vietnamese = client.get(f"/captures/{capture_id}/?lang=vi").get_data(as_text=True)
    assert "Được lưu bằng trình duyệt web" in vietnamese and "Trang chưa tải xong" in vietnamese
    set_method("browser")
    assert "did not finish loading" not in client.get(f"/captures/{capture_id}/").get_data(as_text=True)


# --- Bulk: many sources at once (API, CLI, page), through bulk_change ---


def store(app, count: int, **fields) -> list[int]:
    with app.extensions["samizdat"].Session() as session:
        sources = [Source(url=f"https://site.example/{n}", interval_minutes=60, **fields)
                   for n in range(count)]
        session.add_all(sources)
        session.commit()
        return [s.id for s in sources]


def modes(app) -> list[str]:
    with app.extensions["samizdat"].Session() as session:
        return list(session.scalars(select(Source.capture_mode).order_by(Source.id)))


def test_the_api_sets_the_mode_of_a_collection(app, client, archivist_token):
    store(app, 2, collection="apps")
    other = Source(url="https://other.example/", interval_minutes=60, collection="news")
    with app.extensions["samizdat"].Session() as session:
        session.add(other)
        session.commit()
    done = client.post("/api/sources/bulk", headers=bearer(archivist_token),
                       json={"action": "mode", "capture_mode": "browser", "collection": "apps"})
    assert done.status_code == 200 and done.get_json() == {"action": "mode", "matched": [1, 2], "changed": 2}
    assert modes(app) == ["browser", "browser", "auto"]


@pytest.mark.parametrize("body, message", [
    ({"action": "mode", "ids": [1]}, "capture mode must be one of auto, http, browser, got none"),
    ({"action": "mode", "ids": [1], "capture_mode": "Browser"},
     "capture mode must be one of auto, http, browser, got 'Browser'"),
    ({"action": "pause", "ids": [1], "capture_mode": "http"}, "a capture mode goes with the action mode"),
])
def test_the_api_refuses_a_bulk_mode_change_without_a_good_mode(app, client, archivist_token, body, message):
    store(app, 1)
    refused = client.post("/api/sources/bulk", headers=bearer(archivist_token), json=body)
    assert refused.status_code == 400 and refused.get_json()["error"] == message
    assert modes(app) == ["auto"]


def test_the_cli_sets_the_mode_of_a_country(app, cli):
    store(app, 2, country="VN")
    result = cli.invoke(args=["sources", "mode", "http", "--country", "VN"])
    assert result.exit_code == 0 and "set 2 of 2 matching sources to http" in result.output
    bad = cli.invoke(args=["sources", "mode", "HTTP", "1"])
    assert bad.exit_code == 1
    assert bad.output.strip() == "Error: capture mode must be one of auto, http, browser, got 'HTTP'"
    assert modes(app) == ["http", "http"]


def test_the_page_sets_the_mode_of_the_ticked_sources(app, client, ana):
    ids = store(app, 3)
    listing = client.get("/manage/sources").get_data(as_text=True)
    assert 'aria-label="Capture mode for the ticked sources"' in listing
    done = client.post("/manage/sources/bulk", data={
        "csrf_token": ana, "ids": [str(ids[0]), str(ids[2])], "action": "mode", "capture_mode": "http"})
    assert done.status_code == 303
    assert modes(app) == ["http", "auto", "http"]
    # Pausing from the same form, whose mode menu is always sent, changes no mode.
    client.post("/manage/sources/bulk", data={
        "csrf_token": ana, "ids": [str(ids[1])], "action": "pause", "capture_mode": "browser"})
    assert modes(app) == ["http", "auto", "http"]
    refused = client.post("/manage/sources/bulk", data={
        "csrf_token": ana, "ids": [str(ids[1])], "action": "mode", "capture_mode": ""})
    assert refused.status_code == 400 and "capture mode must be one of" in refused.get_data(as_text=True)
