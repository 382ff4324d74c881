"""Archivist pages for capture-now, bulk import and the jobs list: queue only, escape everything."""

import io
import re

import pytest
from sqlalchemy import func, select

from mirror.jobs import run_queued_jobs
from mirror.models import Capture, Job, Source
from tests.conftest import create_account, make_settings


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only: the only capture is a failed one."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def ana(app, client, login) -> str:
    """The archivist 'ana', logged in on ``client``; returns the session's CSRF token."""
    create_account(app, "ana")
    return login(client, "ana")


def count(app, model) -> int:
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(func.count()).select_from(model))


def add_source(app, url: str) -> int:
    """Store a source row directly (so a test can use a URL the normaliser would refuse)."""
    with app.extensions["samizdat"].Session() as session:
        source = Source(url=url, interval_minutes=60, active=True)
        session.add(source)
        session.commit()
        return source.id


def table(html: str) -> str:
    """Only the page's table (flash notices from earlier clicks also name URLs)."""
    return html[html.index("<table") :] if "<table" in html else ""


def upload(client, csrf, data: bytes, filename: str, **fields):
    form = {"file": (io.BytesIO(data), filename), **fields}
    if csrf is not None:
        form["csrf_token"] = csrf
    return client.post("/manage/sources/import", data=form, content_type="multipart/form-data")


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/manage/jobs"),
        ("get", "/manage/sources/import"),
        ("post", "/manage/sources/import"),
        ("post", "/manage/sources/1/mirror"),
    ],
)
def test_pages_send_visitors_to_login(app, client, method, path):
    add_source(app, "https://example.org/a")
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/login?next={path}")
    assert count(app, Job) == 0


def test_capture_now_queues_one_job_and_captures_nothing(app, client, ana):
    sid = add_source(app, "https://example.org/a")
    page = client.get("/manage/sources").get_data(as_text=True)
    assert f'action="/manage/sources/{sid}/mirror"' in page and "Capture now" in page

    response = client.post(f"/manage/sources/{sid}/mirror", data={"csrf_token": ana})
    assert response.status_code == 303 and response.headers["Location"] == "/manage/sources"
    with app.extensions["samizdat"].Session() as session:
        job = session.scalars(select(Job)).one()
        assert (job.source_id, job.state, job.trigger, job.requested_by) == (
            sid, "queued", "request", "ana",
        )
    assert count(app, Capture) == 0  # the web process only queues; the scheduler captures
    html = client.get("/manage/sources").get_data(as_text=True)
    assert f"queued as job {job.id}" in html

    # Pressing again while the job waits reuses it rather than queueing a second capture.
    client.post(f"/manage/sources/{sid}/mirror", data={"csrf_token": ana})
    assert count(app, Job) == 1


def test_capture_now_of_a_missing_or_deleted_source_is_404(app, client, ana):
    sid = add_source(app, "https://example.org/a")
    deleted = client.post(
        f"/manage/sources/{sid}/delete", data={"csrf_token": ana, "confirm": "yes"}
    )
    assert deleted.status_code == 303
    for target in (sid, 999):
        response = client.post(f"/manage/sources/{target}/mirror", data={"csrf_token": ana})
        assert response.status_code == 404
        assert f"no source with id {target}" in response.get_data(as_text=True)
    assert count(app, Job) == 0


CITIZENLAB = (
    "url,category_code,category_description,date_added,source,notes\r\n"
    "https://www.rfa.org/vietnamese/,NEWS,News Media,2014-04-15,citizenlab,\r\n"
    "mailto:x@example.org,NEWS,News Media,2014-04-15,citizenlab,\r\n"
    "https://www.voatiengviet.com/,NEWS,News Media,2014-04-15,citizenlab,\r\n"
).encode()


def test_import_adds_sources_and_shows_invalid_lines_then_already_present(app, client, ana):
    form = client.get("/manage/sources/import")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.get_data(as_text=True)
    assert "default-src 'none'" in form.headers["Content-Security-Policy"]

    first = upload(client, ana, CITIZENLAB, "vn.csv", collection="vietnam", every="6h")
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert "2 added" in html and "0 already present" in html and "1 invalid" in html
    assert re.search(r"<td>3</td><td[^>]*>[^<]*scheme", html), html
    with app.extensions["samizdat"].Session() as session:
        rows = session.execute(select(Source.country, Source.collection, Source.interval_minutes)).all()
    assert sorted(rows) == [("VN", "vietnam", 360)] * 2

    again = upload(client, ana, CITIZENLAB, "vn.csv")
    assert "0 added" in again.get_data(as_text=True)
    assert "2 already present" in again.get_data(as_text=True)
    assert count(app, Source) == 2


def test_import_of_a_plain_list_numbers_its_lines(app, client, ana):
    data = b"# blocked in BY\nhttps://example.org/a\n\nnot a url\nhttps://example.org/b\n"
    response = upload(client, ana, data, "list.txt", country="by")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "2 added" in html and "<td>4</td>" in html
    assert count(app, Source) == 2


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file is binary"),
        ("https://example.org/caf\u00e9\n".encode("latin-1"), "not UTF-8"),
        (b"url,foo\nhttps://example.org/a,x\n", "not a Citizen Lab test-list header"),
    ],
)
def test_a_bad_file_shows_one_error_and_writes_nothing(app, client, ana, data, message):
    response = upload(client, ana, data, "list.csv")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'class="notice error" role="alert">[^<]*' + message, html), html
    assert count(app, Source) == 0


def test_an_oversized_file_is_refused(app, client, ana):
    from mirror.importer import MAX_IMPORT_BYTES

    data = b"https://example.org/a\n" * (MAX_IMPORT_BYTES // 22 + 1)
    response = upload(client, ana, data, "big.txt")
    assert response.status_code == 400 and "larger than" in response.get_data(as_text=True)
    assert count(app, Source) == 0


def test_import_without_a_file_is_an_error(app, client, ana):
    response = client.post("/manage/sources/import", data={"csrf_token": ana})
    assert response.status_code == 400 and "choose a file" in response.get_data(as_text=True)


def test_forms_without_csrf_are_refused_and_write_nothing(app, client, ana):
    sid = add_source(app, "https://example.org/a")
    # The archivist pages answer a failed CSRF check with the 403 "Not allowed" page.
    assert client.post(f"/manage/sources/{sid}/mirror").status_code == 403
    assert upload(client, None, b"https://example.org/b\n", "list.txt").status_code == 403
    assert upload(client, "wrong", b"https://example.org/b\n", "list.txt").status_code == 403
    assert count(app, Job) == 0 and count(app, Source) == 1


def test_jobs_page_lists_jobs_with_reasons_and_filters_by_state(app, client, ana, site):
    broken = add_source(app, site.url("/status/500"))
    fine = add_source(app, "https://example.org/waiting")
    client.post(f"/manage/sources/{broken}/mirror", data={"csrf_token": ana})
    assert run_queued_jobs(app.extensions["samizdat"]) == 1
    client.post(f"/manage/sources/{fine}/mirror", data={"csrf_token": ana})

    page = client.get("/manage/jobs")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert 'href="/manage/jobs"' in html  # the navigation links here
    assert "2 jobs" in html and "HTTP 500" in html
    # Newest first: the queued job (id 2) is listed before the failed one (id 1).
    rows = table(html)
    assert rows.index("https://example.org/waiting") < rows.index(site.url("/status/500"))

    failed = table(client.get("/manage/jobs?state=failed").get_data(as_text=True))
    assert "HTTP 500" in failed and '<td data-label="State">failed</td>' in failed
    assert '<td data-label="State">queued</td>' not in failed
    assert "https://example.org/waiting" not in failed
    queued = client.get("/manage/jobs?state=queued").get_data(as_text=True)
    assert "1 job queued" in queued and "HTTP 500" not in table(queued)
    assert "No jobs in this state" in client.get("/manage/jobs?state=running").get_data(as_text=True)
    bad = client.get("/manage/jobs?state=<b>")
    assert bad.status_code == 400 and "unknown job state" in bad.get_data(as_text=True)
    assert "<b>" not in bad.get_data(as_text=True)


def test_jobs_page_paginates(app, client, ana, monkeypatch):
    monkeypatch.setattr("mirror.manage.PAGE_SIZE", 2)
    for n in range(3):
        sid = add_source(app, f"https://example.org/{n}")
        client.post(f"/manage/sources/{sid}/mirror", data={"csrf_token": ana})
    first = client.get("/manage/jobs").get_data(as_text=True)
    assert "Page 1 of 2" in first and "https://example.org/2" in table(first)
    assert "https://example.org/0" not in table(first)
    second = table(client.get("/manage/jobs?page=2").get_data(as_text=True))
    assert "https://example.org/0" in second and "https://example.org/2" not in second


def test_job_reasons_and_source_urls_are_escaped(app, client, ana):
    sid = add_source(app, "https://example.org/<script>alert(1)</script>")
    client.post(f"/manage/sources/{sid}/mirror", data={"csrf_token": ana})
    with app.extensions["samizdat"].Session() as session:
        job = session.scalars(select(Job)).one()
        job.state, job.reason = "failed", "<script>alert(2)</script>"
        session.commit()
    for path in ("/manage/jobs", "/manage/sources"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in client.get("/manage/jobs").get_data(as_text=True)
    # The flash after "Capture now" carries the URL too, and is escaped as well.
    client.post(f"/manage/sources/{sid}/mirror", data={"csrf_token": ana})
    assert "<script>" not in client.get("/manage/sources").get_data(as_text=True)

    invalid = upload(client, ana, b"https://<script>x</script>\n", "list.txt")
    assert "<script>" not in invalid.get_data(as_text=True)
