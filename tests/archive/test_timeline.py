"""A source's timeline, text diffs between captures, a capture's reader view with its
verification data, and fragment links landing on their passage in a real Chromium."""

from __future__ import annotations

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from archive.textdiff import diff_paragraphs, diff_words
from config.settings import SettingsError, load_settings
from fragments.models import Fragment
from mirror.jobs import enqueue
from mirror.models import Capture, Job
from mirror.pipeline import capture_source
from mirror.reader import capture_link_path
from mirror.sources import add_source
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.conftest import log_decisions, make_settings

PROSE = [
    "The provincial court sentenced the blogger to nine years in prison for articles about land "
    "seizures, according to her lawyer, who said the trial lasted less than a day.",
    "Her family was not allowed into the courtroom, and diplomats who asked to observe the "
    "hearing were turned away at the gate by plain-clothes police officers.",
    "Officials wrote <script>alert('pwned')</script> into the record, the lawyer said, and "
    "nobody in the room could explain what the strange words meant or why they were there.",
    "Rights groups called the verdict a warning to everyone who writes online, and asked the "
    "government to release her along with dozens of other detained writers.",
]


def article(paragraphs: list[str], title: str = "Blogger jailed for nine years") -> bytes:
    """A small article page whose paragraphs are the given texts (escaped, as a site would)."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<script>window.tracker = 1;</script></head><body><nav><a href='/'>Home</a></nav>"
        f"<main><article><h1>{html.escape(title)}</h1>{body}</article></main></body></html>"
    ).encode()


class MutableSite:
    """A loopback web site whose pages a test changes between captures (or makes fail)."""

    def __init__(self):
        self.pages: dict[str, tuple[int, bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - the stdlib's name
                status, body = site.pages.get(self.path, (404, b"<h1>Not found</h1>"))
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str, body: bytes, status: int = 200) -> str:
        """Serve ``body`` at ``path`` from now on; return its URL."""
        self.pages[path] = (status, body)
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture(scope="module")
def mutable_site():
    """The changeable site, once per module."""
    site = MutableSite()
    yield site
    site.server.shutdown()
    site.server.server_close()


@pytest.fixture
def local_app(tmp_path, database_url):
    """The app on SQLite or PostgreSQL with the local store only: enough for timelines and diffs,
    and fast (no S3 or IPFS round trips per capture)."""
    application = create_app(make_settings(tmp_path, database_url))
    yield application
    application.extensions["samizdat"].dispose()


def add(app, url: str, **fields) -> int:
    """Add a source and return its id."""
    with app.extensions["samizdat"].Session() as session:
        source = add_source(session, url, 60, **fields).source
        session.commit()
        return source.id


def capture(app, source_id: int):
    """Capture the source now, through the whole pipeline (split, replicated)."""
    return capture_source(app.extensions["samizdat"], source_id)


def history(app, site, path: str) -> tuple[int, dict[str, int]]:
    """A source with a first copy, an unchanged check, a changed copy, a failed fetch and a job
    that died without a capture, in that order."""
    url = site.serve(path, article(PROSE))
    source_id = add(app, url, country="VN", collection="press")
    ids = {"first": capture(app, source_id).capture_id}
    ids["unchanged"] = capture(app, source_id).capture_id
    changed = [PROSE[0].replace("nine years", "ten years"), *PROSE[1:3],
               PROSE[3].replace("dozens of other detained", "other")]
    site.serve(path, article(changed))
    ids["changed"] = capture(app, source_id).capture_id
    site.serve(path, b"<h1>Server error</h1>", status=500)
    ids["failed"] = capture(app, source_id).capture_id
    with app.extensions["samizdat"].Session() as session:
        job = enqueue(session, source_id, "schedule")
        session.flush()
        session.execute(update(Job).where(Job.id == job.id).values(
            state="failed", reason="internal error: boom", started_at=utcnow(), finished_at=utcnow()))
        session.commit()
    return source_id, ids


def test_timeline_lists_changed_unchanged_and_failed_captures_newest_first(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    source_id, ids = history(app, mutable_site, "/timeline.html")
    with app.extensions["samizdat"].Session() as session:
        statuses = {c.id: c.status for c in session.scalars(select(Capture))}
    assert [statuses[ids[k]] for k in ("first", "unchanged", "changed", "failed")] == \
        ["ok", "unchanged", "ok", "failed"]

    response = client.get(f"/archive/{source_id}")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    page = response.get_data(as_text=True)
    assert "Blogger jailed for nine years" in page and "VN" in page and "press" in page
    items = re.findall(r'<li class="capture (\w+)">(.*?)</li>', page, re.S)
    assert [status for status, _ in items] == ["failed", "failed", "changed", "unchanged", "first"]
    assert all(re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', body) for _, body in items)
    changed, unchanged = items[2][1], items[3][1]
    assert f'href="/captures/{ids["changed"]}/"' in changed
    assert f'href="/captures/{ids["changed"]}/replay"' in changed
    assert f'/archive/{source_id}/diff?from={ids["first"]}&amp;to={ids["changed"]}' in changed
    # An unchanged check reads the copy it matched, and has nothing to compare.
    assert f'href="/captures/{ids["first"]}/"' in unchanged and "compare with previous" not in unchanged
    assert "/captures/" not in items[0][1] + items[1][1]  # failed attempts stored nothing
    assert "internal error: boom" not in page  # readers see states, not error texts
    assert f'href="/archive/{source_id}/export.wacz"' in page


def test_a_long_timeline_is_paginated_and_clamped(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    url = mutable_site.serve("/paged.html", article(PROSE[:2]))
    source_id = add(app, url)
    capture(app, source_id)
    for _ in range(3):
        capture(app, source_id)  # unchanged checks
    first = client.get(f"/archive/{source_id}?per_page=2").get_data(as_text=True)
    assert first.count('<li class="capture') == 2 and "page 1 of 2" in first
    for query in ("page=-1&per_page=1000000000", "page=abc&per_page=x", "page=" + "9" * 30):
        response = client.get(f"/archive/{source_id}?{query}")
        assert response.status_code == 200, query
    huge = client.get(f"/archive/{source_id}?per_page=1000000000").get_data(as_text=True)
    assert huge.count('<li class="capture') == 4


def test_a_source_without_a_stored_copy_shows_a_friendly_empty_state(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    url = mutable_site.serve("/gone.html", b"oops", status=500)
    source_id = add(app, url)
    empty = client.get(f"/archive/{source_id}")
    assert empty.status_code == 200 and "No copy of this page has been stored yet" in empty.get_data(as_text=True)
    capture(app, source_id)
    page = client.get(f"/archive/{source_id}").get_data(as_text=True)
    assert "No copy of this page has been stored yet" in page and '<li class="capture failed">' in page


def test_diff_marks_inserted_and_deleted_words(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    source_id, ids = history(app, mutable_site, "/diff.html")
    response = client.get(f"/archive/{source_id}/diff?from={ids['first']}&to={ids['changed']}")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    page = response.get_data(as_text=True)
    assert '<del><span class="sr">[removed: </span>nine<span class="sr">]</span></del>' in page
    assert '<ins><span class="sr">[added: </span>ten<span class="sr">]</span></ins>' in page
    assert '<del><span class="sr">[removed: </span>dozens of<span class="sr">]</span></del>' in page
    assert "1 word added, 4 words removed" in page
    # The escaped script text is text here too; unchanged paragraphs are shown as they are.
    assert "<script>" not in page and "Officials wrote &lt;script&gt;" in page
    # An unchanged check stands for the copy it matched: no changes, and the same for A == A.
    for older, newer in ((ids["first"], ids["unchanged"]), (ids["changed"], ids["changed"])):
        same = client.get(f"/archive/{source_id}/diff?from={older}&to={newer}").get_data(as_text=True)
        assert "No changes" in same and "<ins>" not in same


def test_compare_is_ready_with_the_newest_two_and_nothing_chosen_is_a_friendly_page(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    source_id, ids = history(app, mutable_site, "/compare.html")
    page = client.get(f"/archive/{source_id}").get_data(as_text=True)
    # The two newest stored copies are chosen: pressing Compare at once shows what changed.
    assert re.findall(r'<input type="radio" name="(from|to)" value="(\d+)" checked>', page) == [
        ("to", str(ids["changed"])), ("from", str(ids["first"]))]
    # Times carry seconds: two captures in the same minute do not look alike.
    with app.extensions["samizdat"].Session() as session:
        fetched_at = session.get(Capture, ids["changed"]).fetched_at
    assert f"{fetched_at:%H:%M:%S} UTC</time>" in page
    for query in ("", "?from=", f"?to={ids['changed']}", f"?from={ids['first']}&to=", "?lang=vi"):
        response = client.get(f"/archive/{source_id}/diff{query}", headers={"Accept": "text/html"})
        text = response.get_data(as_text=True)
        assert response.status_code == 400 and response.mimetype == "text/html", query
        # No error code, no query syntax: a page saying how to choose.
        assert "Bad Request" not in text and "Error 400" not in text and "notice error" not in text, query
        assert "capture id" not in text and "is missing" not in text, query
        newest = f'href="/archive/{source_id}/diff?from={ids["first"]}&amp;to={ids["changed"]}'
        assert newest in text and f'href="/archive/{source_id}' in text, query
    assert "Choose two captures to compare" in client.get(f"/archive/{source_id}/diff").get_data(as_text=True)
    vietnamese = client.get(f"/archive/{source_id}/diff?lang=vi").get_data(as_text=True)
    assert "Chọn hai bản lưu để so sánh" in vietnamese and '<html lang="vi">' in vietnamese
    # A single stored copy: nothing to preselect as "from", and no "compare the newest" link.
    single = add(app, mutable_site.serve("/single.html", article(PROSE[:1])))
    capture(app, single)
    assert " checked>" not in client.get(f"/archive/{single}").get_data(as_text=True)
    alone = client.get(f"/archive/{single}/diff").get_data(as_text=True)
    assert "Compare the two newest copies" not in alone and "Back to the timeline" in alone


def test_bad_diff_parameters_are_a_clear_4xx(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    source_id, ids = history(app, mutable_site, "/bad.html")
    other = add(app, mutable_site.serve("/other.html", article(PROSE[1:])))
    other_capture = capture(app, other).capture_id
    ok = ids["first"]
    cases = {
        f"to={ok}": 400, f"from={ok}": 400, f"from=&to={ok}": 400, f"from=abc&to={ok}": 400,
        f"from={10**30}&to={ok}": 400, f"from=-1&to={ok}": 400, f"from=１&to={ok}": 400,
        f"from={ok}&to=999999": 404, f"from={ok}&to={other_capture}": 404,
        f"from={ok}&to={ids['failed']}": 404,
    }
    for query, status in cases.items():
        response = client.get(f"/archive/{source_id}/diff?{query}", headers={"Accept": "text/html"})
        assert response.status_code == status, query
        assert response.mimetype == "text/html", query
    assert client.get(f"/archive/999999/diff?from={ok}&to={ok}").status_code == 404
    assert client.get("/archive/" + "9" * 30).status_code == 404


def test_reader_view_shows_the_text_escaped_with_hashes_cids_and_gateways(app, client, mutable_site):
    url = mutable_site.serve("/reader.html", article(PROSE))
    outcome = capture(app, add(app, url))
    assert outcome.status == "ok" and outcome.complete, outcome
    response = client.get(f"/captures/{outcome.capture_id}/")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    # The page's own words, as text: its markup, scripts and navigation are not there.
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert "<script" not in page and "window.tracker" not in page
    assert f"<p dir=\"auto\">{html.escape(PROSE[0])}</p>" in page
    assert '<article class="reader" lang="en">' in page
    assert f'href="/captures/{outcome.capture_id}/replay"' in page
    with app.extensions["samizdat"].Session() as session:
        capture_row = session.get(Capture, outcome.capture_id)
        parts = {p.role: p for p in capture_row.parts}
        directory = capture_row.cid
        assert f'href="/archive/{capture_row.source_id}"' in page
    assert {"page", "warc", "manifest"} <= set(parts) and directory
    cids = re.findall(r"ipfs://([A-Za-z0-9]+)", page)
    assert directory in cids and len(cids) == len(parts) + 1
    for role in ("page", "warc", "manifest"):
        part = parts[role]
        assert f'href="/captures/{outcome.capture_id}/files/{part.name}"' in page
        assert part.sha256 in page
    for gateway in ("https://ipfs.io", "https://dweb.link"):
        assert f'href="{gateway}/ipfs/{directory}/"' in page
        assert sum(f'href="{gateway}/ipfs/{cid}"' in page for cid in cids) == len(parts)
    assert "sha256sum FILE" in page and "ipfs cat CID | sha256sum" in page


def test_unknown_and_failed_captures_are_friendly_404_pages(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    failed = capture(app, add(app, mutable_site.serve("/fails.html", b"no", status=500)))
    for path in ("/captures/424242/", f"/captures/{failed.capture_id}/", "/captures/" + "9" * 30 + "/",
                 "/archive/424242"):
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 404, path
        assert response.mimetype == "text/html" and "Set-Cookie" not in response.headers


def test_an_unchanged_check_reads_the_copy_it_matched(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    source_id = add(app, mutable_site.serve("/same.html", article(PROSE)))
    first = capture(app, source_id).capture_id
    again = capture(app, source_id)
    assert again.status == "unchanged"
    response = client.get(f"/captures/{again.capture_id}/")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/captures/{first}/")


def test_fragment_page_names_its_capture_and_links_to_the_reader_view(local_app, mutable_site):
    app, client = local_app, local_app.test_client()
    outcome = capture(app, add(app, mutable_site.serve("/fragment.html", article(PROSE))))
    with app.extensions["samizdat"].Session() as session:
        fragment = session.scalars(select(Fragment).order_by(Fragment.position)).first()
        fragment.status = "approved"
        session.commit()
        fragment_id, text = fragment.id, fragment.text
    log_decisions(app)  # public once the log holds the approval
    page = client.get(f"/fragments/{fragment_id}").get_data(as_text=True)
    assert f'<a href="/captures/{outcome.capture_id}/">capture {outcome.capture_id}</a>' in page
    assert html.escape(capture_link_path(outcome.capture_id, text)) in page


# Distinct sentences, so every paragraph (and every fragment) is unique on the page.
_SUBJECTS = ["The lawyer", "Her mother", "A neighbour", "The editor", "One diplomat", "A student",
             "The judge", "Her colleague", "A reporter", "The police chief"]
_ACTS = ["described how the arrest happened", "explained what the articles had said",
         "recalled the morning the officers came", "wrote about the land seizures"]


def long_article() -> list[str]:
    """Forty paragraphs of plain prose: a page several screens long on a phone."""
    return [
        f"{subject} {act} in paragraph {n}, and insisted that every reader deserves to know the "
        f"whole story, however long the authorities try to keep it from them."
        for n, (subject, act) in enumerate(
            (s, a) for a in _ACTS for s in _SUBJECTS
        )
    ]


@pytest.fixture
def reader_server(tmp_path, sqlite_url):
    """The app (local store only) served over real HTTP on loopback, for the browser."""
    from werkzeug.serving import make_server

    application = create_app(make_settings(tmp_path, sqlite_url))
    server = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield application, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    application.extensions["samizdat"].dispose()


def test_a_fragment_link_lands_on_its_passage_in_the_reader_view(reader_server, mutable_site, chromium):
    app, base = reader_server
    outcome = capture(app, add(app, mutable_site.serve("/long.html", article(long_article()))))
    with app.extensions["samizdat"].Session() as session:
        fragments = list(session.scalars(select(Fragment).order_by(Fragment.position)))
        assert len(fragments) > 20
        target = fragments[-3]
        link = capture_link_path(outcome.capture_id, target.split_text)
        first_words = " ".join(target.split_text.split()[:5])
    context = chromium.new_context(viewport={"width": 360, "height": 640})
    try:
        page = context.new_page()
        page.goto(base + link, wait_until="load")
        # The browser scrolls to the passage once it has found it.
        page.wait_for_function("() => window.scrollY > 0", timeout=10_000)
        box = page.evaluate(
            """(words) => {
                const p = [...document.querySelectorAll('.text p')].find(e => e.textContent.includes(words));
                const r = p.getBoundingClientRect();
                return {top: r.top, bottom: r.bottom, height: innerHeight, scroll: scrollY, page: document.body.scrollHeight};
            }""",
            first_words,
        )
    finally:
        context.close()
    assert box["page"] > 3 * box["height"]  # a long page: landing at the top would not show it
    assert box["scroll"] > box["height"]
    assert 0 <= box["top"] < box["height"] and box["bottom"] > 0, box


def test_word_diff_and_paragraph_alignment():
    assert diff_words("a quick brown fox", "a slow brown fox") == [
        *diff_words("a", "a"), *[s for s in diff_words("quick", "slow")], *diff_words("brown fox", "brown fox")]
    kinds = [s.kind for s in diff_words("a quick brown fox", "a slow brown fox")]
    assert kinds == ["same", "del", "ins", "same"]
    old = [f"Paragraph number {n} says something long enough to matter." for n in range(14)]
    new = old[:4] + ["A brand new paragraph nobody wrote before."] + old[4:12]
    new[10] = new[10].replace("something", "anything")  # old paragraph 9, edited
    diff = diff_paragraphs(old, new)
    assert [b.kind for b in diff.blocks] == [
        "skipped", "same", "inserted", "same", "skipped", "same", "changed", "same", "same",
        "deleted", "deleted"]
    assert diff.blocks[0].skipped == 3 and diff.blocks[4].skipped == 3
    assert diff.inserted_words == 7 + 1 and diff.deleted_words == 1 + 2 * 9
    assert not diff_paragraphs(old, old).changed


@pytest.mark.parametrize("value", [
    "ftp://gateway.example", "https://ipfs.io?x=1", "ipfs.io", "https://", "https://ipfs.io,javascript:alert(1)",
    "https://ipfs.io#top", "https://user:pw@ipfs.io", "https://ipfs.io:abc",
])
def test_ipfs_gateways_must_be_http_base_urls(value):
    with pytest.raises(SettingsError, match="IPFS_GATEWAYS"):
        load_settings({"SAMIZDAT_IPFS_GATEWAYS": value})


def test_ipfs_gateways_default_and_parse():
    assert load_settings({}).gateway_list == ["https://ipfs.io", "https://dweb.link"]
    parsed = load_settings({"SAMIZDAT_IPFS_GATEWAYS": " http://127.0.0.1:8080/ , https://gw.example/sub "})
    assert parsed.gateway_list == ["http://127.0.0.1:8080", "https://gw.example/sub"]
    assert load_settings({"SAMIZDAT_IPFS_GATEWAYS": ""}).gateway_list == []
