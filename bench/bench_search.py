"""Search benchmark: latency of `archive.search.search` with 1,000 vs 100,000 indexed sources.

The peer is the same engine with a hundred times fewer documents, in the same run (goal: p95 at
100,000 ≤ 3× p95 at 1,000, which only an index-backed search with bounded ranking can meet).
Documents are synthetic but of a realistic size (about 2,500 characters of main text, Zipf-
distributed words from a 30,000-word vocabulary with Vietnamese syllables, diacritics included),
inserted in bulk straight into the index tables: building 100,000 through the capture pipeline
would measure the pipeline. Each query runs the full `search()`: parse, match, rank, count,
snippets of a 20-hit page.

Run: `.venv/bin/python -m bench bench_search` (about 3 minutes; BENCH_SEARCH_LARGE=20000 for a
quicker run). BENCH_SEARCH_ENGINES=sqlite,postgresql adds PostgreSQL, whose 100,000-document build
alone takes several minutes here.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, text

from archive.models import SQLITE_FTS_TABLE, SearchDocument
from archive.search import fold, search
from mirror.models import Capture, Source
from samizdat import migrate
from samizdat.db import make_engine, make_sessionmaker

SMALL = 1_000
LARGE = int(os.environ.get("BENCH_SEARCH_LARGE", "100000"))
ENGINES = os.environ.get("BENCH_SEARCH_ENGINES", "sqlite").split(",")
VOCABULARY = 30_000
WORDS_PER_DOC = 400  # ≈ 2,500 characters: the main text of an ordinary news article
QUERIES = 200
_ONSETS = "b c ch d đ g gi h k kh l m n ng nh p ph qu r s t th tr v x".split()
_RHYMES = ("a à á ả ã ạ ă ắ ằ â ấ ầ e é è ê ế ề i í ì o ó ò ô ố ồ ơ ớ ờ u ú ù ư ứ ừ y "
           "an anh ang ao ăn âm em en êm inh ong ông ơn uân ương ươi iêt uyên").split()


def vocabulary() -> list[str]:
    """30,000 distinct words: Vietnamese syllables, then two-syllable compounds."""
    syllables = [o + r for o in _ONSETS for r in _RHYMES]
    words = dict.fromkeys(syllables)
    rng = np.random.default_rng(1)
    while len(words) < VOCABULARY:
        a, b = rng.integers(0, len(syllables), 2)
        words[syllables[a] + syllables[b]] = None
    return list(words)[:VOCABULARY]


def documents(count: int, words: list[str], seed: int):
    """``count`` (title, body) pairs of Zipf-distributed words (s = 1.1, like natural text)."""
    rng = np.random.default_rng(seed)
    vocab = np.array(words, dtype=object)
    for _ in range(count):
        ranks = rng.zipf(1.1, WORDS_PER_DOC + 8)
        ranks = np.minimum(ranks, VOCABULARY) - 1
        picked = vocab[ranks]
        yield " ".join(picked[:8]).capitalize(), " ".join(picked[8:]).capitalize() + "."


def fill(url: str, count: int, words: list[str]) -> float:
    """Insert ``count`` sources with one capture and one search document each; return seconds."""
    engine = create_engine(url)
    now = datetime.now(timezone.utc)
    sqlite = engine.dialect.name == "sqlite"
    started = time.perf_counter()
    with engine.begin() as conn:
        batch_sources, batch_captures, batch_docs, batch_fts = [], [], [], []

        def flush():
            conn.execute(insert(Source), batch_sources)
            conn.execute(insert(Capture), batch_captures)
            conn.execute(insert(SearchDocument), batch_docs)
            if sqlite:
                conn.execute(
                    text(f"INSERT INTO {SQLITE_FTS_TABLE} (rowid, title, body) "
                         "VALUES (:rowid, :title, :body)"),
                    batch_fts,
                )
            for batch in (batch_sources, batch_captures, batch_docs, batch_fts):
                batch.clear()

        for i, (title, body) in enumerate(documents(count, words, seed=count), start=1):
            page = f"https://site{i % 500}.example/article/{i}"
            batch_sources.append({
                "id": i, "url": page, "interval_minutes": 360, "active": True,
                "country": ("VN", "IR", "CN")[i % 3], "collection": ("vietnam", "news")[i % 2],
                "category_code": ("HUMR", "NEWS", "POLR", "ENV")[i % 4], "created_at": now,
            })
            batch_captures.append({
                "id": i, "source_id": i, "status": "ok", "url": page, "sha256": f"{i:064x}",
                "size": len(body), "fetched_at": now, "complete": True, "processed_at": now,
            })
            batch_docs.append({
                "source_id": i, "capture_id": i, "title": title, "url": page, "body": body,
                "fetched_at": now, "processed_at": now, "indexed_at": now,
            })
            if sqlite:
                batch_fts.append({"rowid": i, "title": fold(title), "body": fold(body)})
            if len(batch_docs) == 2_000:
                flush()
        if batch_docs:
            flush()
    if not sqlite:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def queries(words: list[str]) -> list[str]:
    """Readers' queries: 1–3 words, picked across the whole frequency range (log-uniform rank),
    so very common words (matching most pages) and rare ones are both asked; a few phrases."""
    rng = np.random.default_rng(7)
    result = []
    for i in range(QUERIES):
        n = 1 + i % 3
        ranks = np.exp(rng.uniform(0, np.log(VOCABULARY), n)).astype(int) - 1
        terms = [words[r] for r in ranks]
        # Half typed without diacritics, as many readers do.
        if i % 2:
            terms = [fold(t) for t in terms]
        result.append(f'"{" ".join(terms)}"' if i % 10 == 9 else " ".join(terms))
    return result


def measure(url: str, qs: list[str]) -> tuple[float, float, float]:
    """Median and p95 latency (ms) of ``search()`` over ``qs``, after one warm-up pass; and the
    mean number of matches."""
    engine = make_engine(url)
    Session = make_sessionmaker(engine)
    timings, totals = [], []
    with Session() as session:
        for q in qs[:20]:
            search(session, q)
        for q in qs:
            started = time.perf_counter()
            page = search(session, q)
            timings.append((time.perf_counter() - started) * 1000)
            totals.append(page.total)
    engine.dispose()
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    return statistics.median(timings), p95, statistics.mean(totals)


def _database(engine: str, tmp: Path, count: int) -> tuple[str, Callable[[], None]]:
    """A fresh database URL for one size, and how to drop it."""
    if engine == "sqlite":
        return f"sqlite:///{tmp / f'search-{count}.db'}", lambda: None
    from tests import services

    url = services.create_postgres_database()
    return url, lambda: services.drop_postgres_database(url)


def run() -> str:
    """Build both sizes per engine, query them, and return the Markdown section."""
    words = vocabulary()
    qs = queries(words)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ENGINES:
            results = {}
            for count in (SMALL, LARGE):
                url, drop = _database(engine, Path(tmp), count)
                try:
                    migrate.upgrade(url)
                    build = fill(url, count, words)
                    results[count] = (build, *measure(url, qs))
                finally:
                    drop()
            _, small_median, small_p95, _ = results[SMALL]
            _, large_median, large_p95, _ = results[LARGE]
            for count, (build, median, p95, matches) in results.items():
                rows.append(
                    f"| {engine} | {count:,} | {build:.0f} s | {median:.1f} ms | {p95:.1f} ms "
                    f"| {matches:,.0f} |"
                )
            rows.append(
                f"| {engine} | **{LARGE:,} ÷ {SMALL:,}** | | {large_median / small_median:.2f}× | "
                f"**{large_p95 / small_p95:.2f}×** (goal ≤ 3) | |"
            )
    header = (
        "## Search\n\n"
        f"`.venv/bin/python -m bench bench_search`: {QUERIES} queries (1–3 words, drawn across "
        "the frequency range, half typed without diacritics, one in ten a phrase) through "
        "`archive.search.search` (parse, match, rank, count, 20 hits' snippets), after a warm-up, "
        f"on {SMALL:,} and {LARGE:,} synthetic documents of about {WORDS_PER_DOC} words.\n\n"
        "| Engine | Sources | Bulk insert + index | Median | p95 | Mean matches |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
    )
    return header + "\n".join(rows) + "\n"
