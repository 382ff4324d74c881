"""The sources page finds sources and keeps the archivist's place; pages link to their captures."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mirror.jobs import enqueue, run_queued_jobs
from mirror.models import Capture, Job, Source
from tests.conftest import create_account, make_settings
from tests.sites import seed_names


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def ana(app, client, login) -> str:
    """The archivist 'ana', logged in on ``client``; returns the session's CSRF token."""
    create_account(app, "ana")
    return login(client, "ana")


def store(app, count: int, **fields) -> list[int]:
    """``count`` live sources https://site.example/<n> with ``fields``; returns their ids."""
    with app.extensions["samizdat"].Session() as session:
        sources = [
            Source(url=f"https://site.example/{n}", interval_minutes=60, **fields)
            for n in range(count)
        ]
        session.add_all(sources)
        session.commit()
        return [s.id for s in sources]


def rows(html: str) -> list[str]:
    """The source URLs listed in the page's table, in order."""
    table = html[html.index("<table") :] if "<table" in html else ""
    return re.findall(r'<td class="url">([^<]*)</td>', table)


def test_capture_now_on_a_later_page_returns_to_that_page(app, client, ana, monkeypatch):
    monkeypatch.setattr("mirror.archive.PAGE_SIZE", 2)
    ids = store(app, 9)
    here = "/archive/sources?page=5"
    html = client.get(here).get_data(as_text=True)
    assert rows(html) == ["https://site.example/8"]
    assert f'name="next" value="{here}"' in html

    for action in ("mirror", "pause", "resume"):
        response = client.post(
            f"/archive/sources/{ids[-1]}/{action}", data={"csrf_token": ana, "next": here}
        )
        assert response.status_code == 303 and response.headers["Location"] == here
    edited = client.post(
        f"/archive/sources/{ids[-1]}/edit",
        data={"csrf_token": ana, "next": here, "every": "2h", "country": "", "collection": ""},
    )
    assert edited.headers["Location"] == here


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_the_way_back_never_leaves_the_site(app, client, ana, target):
    (sid,) = store(app, 1)
    response = client.post(
        f"/archive/sources/{sid}/pause", data={"csrf_token": ana, "next": target}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/archive/sources"


def test_sources_are_found_by_url_text_country_collection_and_state(app, client, ana):
    store(app, 2, country="VN", collection="vietnam")
    with app.extensions["samizdat"].Session() as session:
        session.add(
            Source(
                url="https://other.example/50%_off", interval_minutes=60, active=False, country="BY"
            )
        )
        session.commit()

    def listed(query: str) -> list[str]:
        response = client.get(f"/archive/sources?{query}")
        assert response.status_code == 200
        return rows(response.get_data(as_text=True))

    assert listed("q=SITE.example/1") == ["https://site.example/1"]
    assert listed("q=50%25_") == ["https://other.example/50%_off"]  # % and _ are literal
    assert listed("q=1%25") == []  # as a wildcard, 1% would match site.example/1
    assert listed("country=vn") == ["https://site.example/0", "https://site.example/1"]
    assert listed("collection=vietnam&q=/0") == ["https://site.example/0"]
    assert listed("state=paused") == ["https://other.example/50%_off"]
    assert listed("state=active&country=BY") == []
    html = client.get("/archive/sources?country=by").get_data(as_text=True)
    assert 'name="country" value="by"' in html and "1 source matching" in html


def test_pages_of_a_filtered_list_keep_the_filter(app, client, ana, monkeypatch):
    monkeypatch.setattr("mirror.archive.PAGE_SIZE", 2)
    store(app, 5, country="VN")
    html = client.get("/archive/sources?country=VN&page=2").get_data(as_text=True)
    assert 'href="/archive/sources?page=3&amp;country=VN"' in html
    assert 'href="/archive/sources?page=1&amp;country=VN"' in html


@pytest.mark.parametrize("query", ["country=Vietnam", "state=asleep", "q=" + "x" * 201])
def test_a_garbled_filter_is_400_with_the_reason(app, client, ana, query):
    store(app, 1)
    response = client.get(f"/archive/sources?{query}")
    assert response.status_code == 400
    assert 'class="notice error"' in response.get_data(as_text=True)


def test_sources_jobs_and_fragments_link_to_their_capture(app, client, ana, site):
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = Source(url=site.url(f"/articles/{seed_names()[0]}.html"), interval_minutes=60)
        session.add(source)
        session.flush()
        sid = source.id
        enqueue(session, sid, "request", requested_by="ana")
        session.commit()
    run_queued_jobs(rt)
    with rt.Session() as session:
        enqueue(session, sid, "request", requested_by="ana")  # the same bytes again: unchanged
        session.commit()
    run_queued_jobs(rt)
    with rt.Session() as session:
        captures = [(c.id, c.status) for c in session.scalars(select(Capture).order_by(Capture.id))]
        jobs = [(j.state, j.capture_id) for j in session.scalars(select(Job).order_by(Job.id))]
    assert captures == [(1, "ok"), (2, "unchanged")]
    assert jobs == [("succeeded", 1), ("unchanged", 2)]
    link = '<a href="/captures/1/">capture 1</a>'

    assert link in client.get("/archive/sources").get_data(as_text=True)
    jobs_page = client.get("/archive/jobs").get_data(as_text=True)
    # The unchanged check links to the stored copy it matched; the reader has nothing under 2.
    assert jobs_page.count(link) == 2 and "/captures/2/" not in jobs_page
    fragments_page = client.get("/archive/fragments").get_data(as_text=True)
    assert link in fragments_page
    assert client.get("/captures/1/").status_code == 200  # the reader view
    assert client.get("/captures/2/").headers["Location"].endswith("/captures/1/")
