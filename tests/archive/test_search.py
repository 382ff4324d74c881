"""Full-text search of the archive: real captures indexed by the scheduler's task, searched on
SQLite (FTS5) and PostgreSQL (tsvector), Vietnamese without diacritics, and hostile queries."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, select, text

from archive.index import index_new_captures, watermark
from archive.models import SearchDocument
from archive.search import MAX_QUERY_CHARS, fold, parse_query, search
from archive.tasks import periodic_tasks
from mirror.models import Source
from mirror.pipeline import capture_document, capture_source
from mirror.sources import add_source, delete_source
from samizdat import migrate
from samizdat.runtime import build_runtime
from samizdat.tasks import TASKS_KEY
from tests import services
from tests.conftest import make_settings
from tests.sites import seed_names

HANOI_PAGE = """<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">
<title>Blogger bị bắt ở Hà Nội</title></head><body><main><article>
<h1>Blogger bị bắt ở Hà Nội</h1>
<p>Công an Hà Nội đã bắt giữ một blogger vì những bài viết về quyền con người trên mạng xã hội.
Gia đình ông nói rằng họ không được phép gặp ông sau khi bị bắt.</p>
<p>Các tổ chức nhân quyền kêu gọi chính quyền trả tự do ngay lập tức cho người bị bắt giữ.</p>
</article></main></body></html>"""

DANANG_PAGE = """<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">
<title>Biểu tình ở Đà Nẵng</title></head><body><main><article>
<h1>Biểu tình ở Đà Nẵng</h1>
<p>Hàng trăm người dân Đà Nẵng đã xuống đường phản đối dự án nhà máy gây ô nhiễm môi trường.
Nhiều người bị câu lưu sau cuộc biểu tình ôn hòa kéo dài nhiều giờ.</p>
<p>Chính quyền thành phố chưa đưa ra bình luận nào về các vụ bắt giữ.</p>
</article></main></body></html>"""

# Mentions the dam once, in passing: a weaker match for "river dam" than the page about it.
PASSING_PAGE = """<html><head><title>Weekly round-up</title></head><body><article>
<p>This week the council debated budgets, bus routes and school meals at great length, and
a reader wrote in about the river near the old mill, which some say floods every spring.</p>
<p>Elsewhere, a dam inspection was postponed again; the council will meet next month.</p>
</article></body></html>"""

DAM_PAGE = """<html><head><title>River dam protest grows</title></head><body><article>
<p>Villagers opposed to the river dam marched again on Sunday. The river dam would flood
farmland, and the protest against the river dam has grown every week since the spring.</p>
<p>Police said the river dam protest was peaceful and no one was detained.</p>
</article></body></html>"""

# Text that looks like markup: once extracted, it is words and must stay inert data.
SCRIPT_PAGE = """<html><head>
<title>Script &lt;script&gt;alert(1)&lt;/script&gt; review</title></head>
<body><article><p>The censors quoted &lt;script&gt;alert("censored")&lt;/script&gt; in their
ruling about the censored forum, which they said was dangerous code for every reader.</p>
</article></body></html>"""


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), the local store only: search reads nothing else."""
    return make_settings(tmp_path, database_url)


def upload(runtime, url: str, page: str, country=None, collection=None, category=None) -> int:
    """Keep ``page`` as a capture of ``url`` through the real pipeline; return the source id."""
    with runtime.Session() as session:
        source = add_source(session, url, 60, country=country, collection=collection).source
        source.category_code = category
        session.commit()
        source_id = source.id
    outcome = capture_document(runtime, source_id, page.encode(), "page.html")
    assert outcome.status == "ok", outcome
    return source_id


def build_archive(runtime, site, full: bool = True) -> dict[str, int]:
    """Three seed articles fetched from the fixture site, and uploaded pages in Vietnamese,
    English and with markup in their text; then indexed by the scheduler's periodic task.
    Without ``full``, only the uploads the tests that change the archive need."""
    ids = {}
    if full:
        with runtime.Session() as session:
            for name in seed_names():
                url = site.url(f"/articles/{name}.html")
                ids[name] = add_source(session, url, 60, country="GB").source.id
            session.commit()
        for name in seed_names():
            assert capture_source(runtime, ids[name]).status == "ok"
    ids["hanoi"] = upload(runtime, "https://vn.example/hanoi", HANOI_PAGE, "VN", "vietnam", "HUMR")
    if full:
        ids["danang"] = upload(
            runtime, "https://vn.example/danang", DANANG_PAGE, "VN", "vietnam", "ENV"
        )
    ids["passing"] = upload(
        runtime, "https://news.example/roundup", PASSING_PAGE, "GB", "news", "NEWS"
    )
    ids["dam"] = upload(runtime, "https://news.example/dam", DAM_PAGE, "GB", "news", "ENV")
    if full:
        ids["script"] = upload(
            runtime, "https://news.example/script", SCRIPT_PAGE, "GB", "news", "NEWS"
        )
    # The scheduler's task (the static copy's task is switched off here: no app to render with).
    (task,) = periodic_tasks(runtime.settings.replace(archive_publish=False), app=None)
    assert task.id == "archive.index-search"
    task.func(runtime)
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request, tmp_path_factory, site):
    """(runtime, ids) of one archive per database, shared by the tests that only read it: building
    it captures pages, and the hostile queries alone are a hundred tests."""
    yield from _shared_archive(request.param, tmp_path_factory, site)


@pytest.fixture(scope="module")
def pg_shared(tmp_path_factory, site):
    """The shared archive on PostgreSQL only, for what only PostgreSQL's planner does."""
    yield from _shared_archive("postgresql", tmp_path_factory, site)


def _shared_archive(engine: str, tmp_path_factory, site):
    tmp = tmp_path_factory.mktemp(f"search-{engine}")
    if engine == "sqlite":
        url = f"sqlite:///{tmp / 'samizdat.db'}"
    else:
        url = services.create_postgres_database()
    try:
        migrate.upgrade(url)
        runtime = build_runtime(make_settings(tmp, url))
        ids = build_archive(runtime, site)
        yield runtime, ids
        runtime.dispose()
    finally:
        if engine == "postgresql":
            services.drop_postgres_database(url)


@pytest.fixture
def archive(runtime, site):
    """A small archive of its own, for the tests that change it (function-scoped database)."""
    return build_archive(runtime, site, full=False)


def found(runtime, query, **filters) -> list[int]:
    with runtime.Session() as session:
        return [hit.source_id for hit in search(session, query, **filters).hits]


def test_the_task_indexes_every_successful_capture_once(shared):
    runtime, archive = shared
    with runtime.Session() as session:
        documents = session.scalars(select(SearchDocument)).all()
    assert {d.source_id for d in documents} == set(archive.values())
    hanoi = next(d for d in documents if d.source_id == archive["hanoi"])
    assert hanoi.title == "Blogger bị bắt ở Hà Nội" and "Công an Hà Nội" in hanoi.body
    # Nothing new since: a second run does nothing.
    assert index_new_captures(runtime).indexed == 0


def test_vietnamese_without_diacritics_finds_the_page(shared):
    runtime, archive = shared
    assert found(runtime, "ha noi") == [archive["hanoi"]]
    assert found(runtime, "Hà Nội") == [archive["hanoi"]]
    # Đ is a letter of its own, not D with a mark: folded by us on SQLite, by unaccent on
    # PostgreSQL.
    assert found(runtime, "da nang") == [archive["danang"]]
    assert found(runtime, "ĐÀ NẴNG") == [archive["danang"]]
    assert found(runtime, '"noi ha"') == []  # a phrase keeps its order


def test_the_better_match_ranks_first(shared):
    runtime, archive = shared
    hits = found(runtime, "river dam")
    assert hits[:2] == [archive["dam"], archive["passing"]]


def test_filters_restrict_the_results(shared):
    runtime, archive = shared
    assert set(found(runtime, "bắt")) == {archive["hanoi"], archive["danang"]}
    assert found(runtime, "bat", category="humr") == [archive["hanoi"]]
    vietnamese = {archive["hanoi"], archive["danang"]}
    assert set(found(runtime, "bat", collection="vietnam", country="vn")) == vietnamese
    assert found(runtime, "bat", country="GB") == []
    assert found(runtime, "dam", collection="news", category="ENV") == [archive["dam"]]
    assert set(found(runtime, "vietnam", country="gb")) == {archive[n] for n in seed_names()}


def test_operators_phrases_and_exclusion(shared):
    runtime, archive = shared
    expected = {archive["dam"], archive["passing"], archive["danang"]}
    assert set(found(runtime, "dam OR nang")) == expected
    assert found(runtime, "dam -council") == [archive["dam"]]
    assert found(runtime, '"river dam" -"no one"') == []
    assert found(runtime, '"river near the old mill"') == [archive["passing"]]


def test_repeated_searches_are_planned_for_their_words(pg_shared):
    """psycopg prepares a statement run five times; PostgreSQL would then plan it once for any
    words. Search asks for a plan per query, in its transaction only, and puts the setting back."""
    runtime, archive = pg_shared
    with runtime.Session() as session:
        assert session.get_bind().dialect.name == "postgresql"
        before = session.execute(text("SHOW plan_cache_mode")).scalar_one()
        for _ in range(12):  # past psycopg's and the plan cache's thresholds
            assert [h.source_id for h in search(session, '"river near the old mill"').hits] == [
                archive["passing"]
            ]
        assert search(session, "ha noi").hits[0].source_id == archive["hanoi"]
        assert session.execute(text("SHOW plan_cache_mode")).scalar_one() == before


@pytest.mark.parametrize("by_index", [True, False])
def test_both_ways_to_the_newest_matches_agree(pg_shared, monkeypatch, by_index):
    """PostgreSQL finds the newest matches through the GIN index or by walking source ids,
    whichever the planner's estimate says is cheaper; both must give the same page."""
    runtime, archive = pg_shared
    with runtime.Session() as session:
        assert session.get_bind().dialect.name == "postgresql"
        session.execute(text("ANALYZE search_documents"))
        expected = {q: search(session, q) for q in ("river dam", '"river near the old mill"',
                                                    "dam OR nang", "bat", "vietnam -dam")}
        monkeypatch.setattr("archive.search._pg_by_index", lambda estimate, documents: by_index)
        for query, page in expected.items():
            again = search(session, query)
            assert [h.source_id for h in again.hits] == [h.source_id for h in page.hits], query
            assert again.total == page.total
        assert found(runtime, "bat", category="humr") == [archive["hanoi"]]


def test_deleted_sources_are_not_found(runtime, archive):
    with runtime.Session() as session:
        delete_source(session, session.get(Source, archive["dam"]))
        session.commit()
    assert found(runtime, "river dam") == [archive["passing"]]


def test_snippets_mark_matches_and_keep_markup_as_data(shared):
    runtime, archive = shared
    with runtime.Session() as session:
        (hit,) = search(session, "ha noi").hits
        marked = {text for text, is_match in hit.snippet if is_match}
        # "nói" (says) is "noi" too, without its accent: the engines matched it the same way.
        assert {"Hà", "Nội"} <= marked and {fold(t) for t in marked} == {"ha", "noi"}
        assert [t for t, m in hit.title_segments if m] == ["Hà", "Nội"]
        (script,) = search(session, "censored forum ruling").hits
    assert script.source_id == archive["script"]
    text = "".join(t for t, _ in script.snippet)
    # The words, as data: escaping them is the page's job.
    assert '<script>alert("censored")</script>' in text
    assert ("censored", True) in script.snippet and ("ruling", True) in script.snippet
    assert all(isinstance(t, str) and isinstance(m, bool) for t, m in script.snippet)


HOSTILE = [
    "", "   ", "\x00", "\x00ha noi", "ha\x00noi", "\ud800", "ha \udfff noi", "\x1b[31m\x07\x08",
    '"', '"""', '"ha noi', 'ha noi"', "-", "--", "-dam", '-"river dam"', "OR", "OR OR OR",
    "dam OR", "AND", "NOT dam", "dam NOT", "NEAR(dam river)", "dam*", "*", "^dam", "title:dam",
    "{title}: dam", "dam + river", "(dam", "dam)", "'", "''; DROP TABLE sources; --", "\\", "%_%",
    "!!dam", "dam & | ! <->", ":*", "𝓭𝓪𝓶", "ﬁ", "\u200bdam\u200b", "\u0301\u0301", "e\u0301", "ß",
    "a" * 10_000, "ha noi " * 1_500, ('"x" ' * 600), "- " * 5000, "dam " * 40,
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_give_results_or_a_message(shared, query):
    runtime, archive = shared
    with runtime.Session() as session:
        page = search(session, query, page=1, per_page=20)
        assert page.total >= len(page.hits) and len(page.query) <= MAX_QUERY_CHARS
        if not parse_query(query).groups:  # nothing left to search for: say so
            assert page.message and not page.hits
        # The session stays usable after whatever the query was.
        assert search(session, "dam").hits


@pytest.mark.parametrize(
    "query",
    ["\x00ha noi", "ha\x00noi", "ha \udfff noi", '"ha noi', 'ha noi"', "\u200bha noi\u200b",
     "(ha) noi*", "+ha ^noi:"],
)
def test_control_characters_and_stray_syntax_are_only_separators(shared, query):
    runtime, archive = shared
    assert found(runtime, query) == [archive["hanoi"]]


def test_long_and_crowded_queries_say_they_were_simplified(shared):
    runtime, archive = shared
    with runtime.Session() as session:
        long = search(session, "dam " + "x" * 10_000)
        assert "shortened" in long.message
        crowded = search(session, "dam " * 40)
        assert crowded.hits and "first 12" in crowded.message
        assert "Type a word" in search(session, "\x00 \x01 ").message
        assert "leave words out" in search(session, "-dam").message


@pytest.mark.parametrize("page, per_page", [(-1, 20), (0, 0), (10**9, 10**9), ("x", "y"), (2, 1)])
def test_paging_is_clamped(shared, page, per_page):
    runtime, archive = shared
    with runtime.Session() as session:
        result = search(session, "vietnam", page=page, per_page=per_page)
    assert 1 <= result.page <= 1_000_000 and 1 <= result.per_page <= 200
    assert result.total == len(seed_names())  # the English articles, on every page
    expected = max(0, min(result.per_page, result.total - (result.page - 1) * result.per_page))
    assert len(result.hits) == expected


def test_filters_no_source_can_have_are_an_empty_page(shared):
    runtime, archive = shared
    with runtime.Session() as session:
        for filters in ({"country": "\x00"}, {"collection": "\ud800"}, {"category": "x" * 10_000}):
            page = search(session, "dam", **filters)
            assert page.hits == []


def test_new_captures_are_indexed_after_the_watermark(runtime, archive):
    with runtime.Session() as session:
        before = watermark(session)
    changed = DAM_PAGE.replace("River dam protest grows", "Hydropower protest spreads to Hà Tĩnh")
    outcome = capture_document(runtime, archive["dam"], changed.encode(), "page.html")
    assert found(runtime, "ha tinh") == []  # not yet: the index follows the task
    report = index_new_captures(runtime)
    assert report.indexed == 1
    assert found(runtime, "ha tinh") == [archive["dam"]]
    with runtime.Session() as session:
        assert session.get(SearchDocument, archive["dam"]).capture_id == outcome.capture_id
        assert watermark(session) > before


def test_the_app_hands_the_task_to_the_scheduler(app):
    assert "archive.index-search" in {task.id for task in app.extensions[TASKS_KEY]}


def test_reindex_cli_rebuilds_the_index(app, cli, archive):
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        for document in session.scalars(select(SearchDocument)):
            session.delete(document)
        session.commit()
    result = cli.invoke(args=["archive", "reindex", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert f"{len(archive)} source(s) indexed, 0 failed" in result.output
    assert found(rt, "ha noi") == [archive["hanoi"]]
    # Idempotent: again, and nothing is doubled.
    assert cli.invoke(args=["archive", "reindex"]).exit_code == 0
    assert found(rt, "ha noi") == [archive["hanoi"]]


@pytest.mark.parametrize("value", ["0", "many", "9" * 5000, "-3"])
def test_reindex_cli_refuses_bad_options_in_one_line(cli, value):
    result = cli.invoke(args=["archive", "reindex", "--batch-size", value])
    assert result.exit_code == 1
    assert result.output.startswith("Error:")
    assert result.output.splitlines() == [result.output.strip()]
    assert "--batch-size must be a whole number" in result.output


def test_migration_downgrades_and_upgrades(database_url):
    migrate.downgrade(database_url, "0007")
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert "search_documents" not in tables and "search_fts" not in tables
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert "search_documents" in tables
            if engine.dialect.name == "sqlite":
                assert "search_fts" in tables
            else:
                columns = {c["name"] for c in inspect(conn).get_columns("search_documents")}
                assert "search_vector" in columns
    finally:
        engine.dispose()


def test_fold_keeps_length_and_folds_vietnamese():
    for text in ("Hà Nội", "Đà Nẵng", "ĐƯỜNG", "Straße", "İstanbul", "ﬁ"):
        assert len(fold(text)) == len(text)
    assert fold("Hà Nội, Đà Nẵng") == "ha noi, da nang"


def test_parse_query_never_passes_syntax_through():
    parsed = parse_query('hà-nội "river dam" OR flood -"no one" NEAR(x) title:y')
    assert [[c.words for c in g] for g in parsed.groups] == [
        [("hà", "nội")], [("river", "dam"), ("flood",)], [("NEAR", "x")], [("title", "y")]
    ]
    assert [c.words for c in parsed.excluded] == [("no", "one")]


def test_a_page_gone_from_the_store_is_reported_and_the_rest_indexed(app, cli, archive):
    from mirror.models import Capture

    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        capture = session.get(Capture, session.get(SearchDocument, archive["dam"]).capture_id)
        sha = next(p.sha256 for p in capture.parts if p.role == "page")
    (blob,) = rt.settings.data_dir.rglob(sha)
    blob.unlink()
    result = cli.invoke(args=["archive", "reindex"])
    assert result.exit_code == 1
    assert f"{len(archive) - 1} source(s) indexed, 1 failed" in result.output
    assert found(rt, "ha noi") == [archive["hanoi"]]
