"""Full-text search of the archive: one interface, SQLite FTS5 or PostgreSQL full-text search.

Readers type free text. :func:`parse_query` turns it into a small, safe structure (words,
"quoted phrases", ``OR`` between two of them, ``-`` to exclude one); raw input never reaches
FTS5's MATCH or a tsquery parser: each engine gets only quoted words (FTS5) or bound parameters
(PostgreSQL). :func:`search` runs it on the engine of the session's dialect, ranks, filters by
the source's country, collection and category, and returns snippets as data — ``(text,
is_match)`` segments — for templates to escape and wrap in ``<mark>``.

Vietnamese readers often type without diacritics: "ha noi" finds "Hà Nội". FTS5's unicode61
``remove_diacritics 2`` and PostgreSQL's ``unaccent`` fold accents; letters that are not accented
forms (đ, ø, ł…) FTS5 leaves alone, so :func:`fold` folds them in the indexed text and the query.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

import regex
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from archive.models import PG_TEXT_SEARCH_CONFIG, PG_VECTOR_COLUMN, SQLITE_FTS_TABLE
from samizdat.db import UTCDateTime
from samizdat.text import unstorable_reason
from samizdat.web import MAX_PAGE, MAX_PAGE_SIZE

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 12  # words and phrases searched at most, excluded ones included
MAX_PHRASE_WORDS = 12
# A query matching more pages than this ranks the most recently added ones of them: ranking every
# match would make a common word cost in proportion to the archive (docs/benchmarks.md).
MAX_RANKED = 1000
SNIPPET_CHARS = 220

Segment = tuple[str, bool]

# A word: letters, digits, private-use characters, with the marks that belong to them. The same
# classes FTS5's unicode61 and PostgreSQL's parser make words of.
_WORD = regex.compile(r"[\p{L}\p{N}\p{Co}][\p{L}\p{N}\p{M}\p{Co}]*")
# One query item: an optionally negated "quoted phrase" (a missing closing quote ends it at the
# end of the query), or a run of non-space characters.
_ITEM = regex.compile(r'(-?)"([^"]*)"?|(\S+)')
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})
# Letters that are not a base letter plus marks, so neither NFKD nor unicode61 folds them.
_LETTERS = {"đ": "d", "Đ": "d", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "ħ": "h", "Ħ": "h",
            "ŧ": "t", "Ŧ": "t", "ı": "i", "ƀ": "b", "ɨ": "i", "ʉ": "u"}


def _fold_table() -> dict[int, str]:
    """One character → its lower-case base letter, wherever that is exactly one character.

    One character for one, on purpose: inverted, the table gives each folded letter the class of
    characters it stands for, with which snippets find matches in the original text.
    """
    table: dict[int, str] = {}
    for code in range(0x80, 0x2000):
        char = chr(code)
        base = _LETTERS.get(char)
        if base is None:
            decomposed = unicodedata.normalize("NFKD", char)
            base = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
        if len(base) == 1 and base != char:
            table[code] = base
    for code in range(ord("A"), ord("Z") + 1):
        table[code] = chr(code).lower()
    return table


_FOLD = _fold_table()


def _variants_table() -> dict[str, str]:
    """Folded character → a regex class of every character that folds to it (snippets match the
    original text with these, so it never has to be folded whole)."""
    variants: dict[str, set[str]] = {}
    for code, base in _FOLD.items():
        variants.setdefault(base, {base}).add(chr(code))
    return {
        base: "[" + "".join(regex.escape(c) for c in sorted(chars)) + "]"
        for base, chars in variants.items()
    }


_VARIANTS = _variants_table()


def fold(value: str) -> str:
    """``value`` lower-cased, without accents, đ → d: the same length, for index and query alike."""
    return value.translate(_FOLD)


# --- parsing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """One word, or a phrase of several words that must appear in this order."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class ParsedQuery:
    """A query as search understands it: all ``groups`` (each one clause or an OR of clauses)
    must match and no ``excluded`` clause may; ``notes`` say what was changed or left out."""

    text: str
    groups: tuple[tuple[Clause, ...], ...] = ()
    excluded: tuple[Clause, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def terms(self) -> frozenset[str]:
        """The folded words a match may contain (what snippets mark)."""
        return frozenset(fold(w) for group in self.groups for clause in group for w in clause.words)


def clean_query(raw: str) -> tuple[str, list[str]]:
    """``raw`` without control or invisible characters, NFKC-normalised and at most
    MAX_QUERY_CHARS long; with notes on what was shortened."""
    notes = []
    # Bound the work first: a 10 MB query string is cut before any per-character pass.
    raw = raw[: MAX_QUERY_CHARS * 4]
    raw = regex.sub(r"[\ud800-\udfff]", "", raw)  # lone surrogates: no engine can take them
    raw = unicodedata.normalize("NFKC", raw).translate(_QUOTES)
    # Controls (NUL included) separate words; format characters (zero-width ones) vanish.
    cleaned = regex.sub(r"\p{Cc}+", " ", raw)
    cleaned = regex.sub(r"[\p{Cf}\p{Cn}\p{Cs}]+", "", cleaned)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > MAX_QUERY_CHARS:
        cut = cleaned[:MAX_QUERY_CHARS]
        cleaned = cut.rsplit(" ", 1)[0] if " " in cut else cut
        notes.append(f"The search was shortened to its first {MAX_QUERY_CHARS} characters.")
    return cleaned, notes


def parse_query(raw: str) -> ParsedQuery:
    """Parse what a reader typed; never fails (anything unusual becomes plain words)."""
    cleaned, notes = clean_query(raw)
    groups: list[list[Clause]] = []
    excluded: list[Clause] = []
    count = 0
    join_next = False
    dropped = False
    for match in _ITEM.finditer(cleaned):
        negated, phrase, bare = match.groups()
        if bare is not None:
            if bare == "OR":  # only upper-case OR, as in web search engines: "or" is a word
                join_next = bool(groups)
                continue
            negated = bare.startswith("-")
            phrase = bare.lstrip("-")
        words = tuple(_WORD.findall(phrase))
        if not words:
            continue
        if count >= MAX_CLAUSES or len(words) > MAX_PHRASE_WORDS:
            dropped = True
            words = words[:MAX_PHRASE_WORDS]
            if count >= MAX_CLAUSES:
                continue
        count += 1
        clause = Clause(words)
        if negated:
            excluded.append(clause)
        elif join_next:
            groups[-1].append(clause)
        else:
            groups.append([clause])
        join_next = False
    if dropped:
        notes.append(
            f"Only the first {MAX_CLAUSES} words or phrases (of {MAX_PHRASE_WORDS} words at most) "
            "were searched."
        )
    return ParsedQuery(cleaned, tuple(tuple(g) for g in groups), tuple(excluded), tuple(notes))


def fts5_match(query: ParsedQuery) -> str:
    """The FTS5 MATCH expression: every word folded and double-quoted, operators explicit."""

    def quoted(clause: Clause) -> str:
        # Words hold letters, digits and marks only, so they cannot close the string; doubling
        # quotes anyway keeps that true whatever _WORD becomes.
        return '"' + " ".join(fold(w) for w in clause.words).replace('"', '""') + '"'

    positive = " AND ".join("(" + " OR ".join(quoted(c) for c in g) + ")" for g in query.groups)
    if query.excluded:
        return f"({positive}) NOT (" + " OR ".join(quoted(c) for c in query.excluded) + ")"
    return positive


def pg_tsquery(query: ParsedQuery) -> tuple[str, dict[str, str]]:
    """A PostgreSQL tsquery expression and its bound parameters: phraseto_tsquery per clause,
    combined with && || !!, so nothing the reader typed is ever parsed as tsquery syntax."""
    params: dict[str, str] = {}

    def clause_sql(clause: Clause) -> str:
        name = f"t{len(params)}"
        params[name] = " ".join(clause.words)
        return f"phraseto_tsquery('{PG_TEXT_SEARCH_CONFIG}', :{name})"

    parts = ["(" + " || ".join(clause_sql(c) for c in g) + ")" for g in query.groups]
    parts += [f"!!({clause_sql(c)})" for c in query.excluded]
    return " && ".join(parts), params


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """One page found: its source, the capture the text came from, and marked-up snippets."""

    source_id: int
    capture_id: int
    title: str | None
    url: str
    fetched_at: datetime
    rank: float  # higher is better; comparable within one result page only
    snippet: list[Segment] = field(default_factory=list)
    title_segments: list[Segment] = field(default_factory=list)
    country: str | None = None
    collection: str | None = None
    category_code: str | None = None
    category_description: str | None = None


@dataclass(frozen=True)
class SearchPage:
    """One page of results. ``total`` counts at most MAX_RANKED matches (``total_capped`` when
    there are more); ``message`` is a note for the reader (nothing to search, query shortened)."""

    query: str
    hits: list[SearchHit]
    total: int
    page: int
    per_page: int
    message: str | None = None
    total_capped: bool = False


def _clamp(value: object, low: int, high: int, default: int) -> int:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return min(high, max(low, number))


def search(
    session: Session,
    query: str,
    *,
    country: str | None = None,
    collection: str | None = None,
    category: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> SearchPage:
    """Search the archive's latest captures for ``query``, best first, with optional filters.

    Never raises for what a reader can type: an empty or unusable query, or a filter no source
    could have, gives an empty page with a ``message``. ``page`` and ``per_page`` are clamped.
    """
    page = _clamp(page, 1, MAX_PAGE, 1)
    per_page = _clamp(per_page, 1, MAX_PAGE_SIZE, 20)
    parsed = parse_query(query if isinstance(query, str) else "")
    notes = list(parsed.notes)

    def empty(note: str | None = None) -> SearchPage:
        message = " ".join(notes + ([note] if note else [])) or None
        return SearchPage(parsed.text, [], 0, page, per_page, message)

    if not parsed.groups:
        if parsed.excluded:
            return empty("Add a word to search for: a search cannot only leave words out.")
        return empty("Type a word to search for.")
    filters = {"country": country, "collection": collection, "category": category}
    for name, value in filters.items():
        if value is not None and (not isinstance(value, str) or unstorable_reason(value)):
            return empty(f"No page has that {name}.")
    filters = {k: v.strip() for k, v in filters.items() if v and v.strip()}
    dialect = session.get_bind().dialect.name
    offset = (page - 1) * per_page
    try:
        if dialect == "sqlite":
            rows, total = _search_sqlite(session, parsed, filters, per_page, offset)
        elif dialect == "postgresql":
            rows, total = _search_postgresql(session, parsed, filters, per_page, offset)
        else:  # pragma: no cover - the project supports these two
            raise NotImplementedError(f"no search for {dialect}")
    except OperationalError as exc:
        # Only a query FTS5 itself refuses should land here; keep the reader's page working.
        if "fts5" not in str(exc).lower():
            raise
        session.rollback()
        return empty("That search could not be understood; try plain words.")
    hits = [_hit(row, parsed.terms) for row in rows]
    capped = total > MAX_RANKED
    if capped:
        notes.append(
            f"More than {MAX_RANKED} pages match; the {MAX_RANKED} most recently added are ranked."
        )
    return SearchPage(
        parsed.text, hits, min(total, MAX_RANKED), page, per_page, " ".join(notes) or None, capped
    )


_COLUMNS = (
    "d.source_id, d.capture_id, d.title, d.url, d.body, d.fetched_at, "
    "s.country, s.collection, s.category_code, s.category_description"
)


def _filter_sql(filters: dict[str, str]) -> tuple[str, dict[str, str]]:
    """SQL conditions on the source (live, and matching each filter), with bound parameters."""
    conditions = ["s.deleted_at IS NULL"]
    params: dict[str, str] = {}
    if "country" in filters:
        conditions.append("s.country = :country")
        params["country"] = filters["country"].upper()
    if "collection" in filters:
        conditions.append("s.collection = :collection")
        params["collection"] = filters["collection"]
    if "category" in filters:
        conditions.append("s.category_code = :category")
        params["category"] = filters["category"].upper()
    return " AND ".join(conditions), params


def _search_sqlite(session, parsed, filters, limit, offset):
    """FTS5: walk the matches newest source first (rowid order: FTS5 stops at the LIMIT, and
    ``rank`` is computed only for the rows it returns), then sort those by bm25 (title ten times
    the text, the table's configured rank)."""
    where, params = _filter_sql(filters)
    params |= {"match": fts5_match(parsed), "cap": MAX_RANKED + 1, "limit": limit, "offset": offset}
    ranked = f"""
        SELECT f.rowid AS source_id, -f.rank AS rank FROM {SQLITE_FTS_TABLE} f
        JOIN sources s ON s.id = f.rowid
        WHERE {SQLITE_FTS_TABLE} MATCH :match AND {where}
        ORDER BY f.rowid DESC LIMIT :cap"""
    return _ranked_page(session, ranked, "", params)


def _search_postgresql(session, parsed, filters, limit, offset):
    """tsvector + GIN: the newest matching sources (at most MAX_RANKED + 1), then ts_rank_cd over
    those only, whatever the archive's size."""
    where, params = _filter_sql(filters)
    tsquery, query_params = pg_tsquery(parsed)
    tsquery = f"({tsquery})"  # @@ binds tighter than &&
    params |= query_params | {"cap": MAX_RANKED + 1, "limit": limit, "offset": offset}
    # Plan for these words, every time. psycopg prepares a statement run five times, and
    # PostgreSQL then plans it once for any words ("generic plan"): guessing 500 matches, it
    # takes the GIN index and rechecks every candidate's positions, 1.7 s for a phrase of two
    # common words at 100,000 sources instead of 9 ms walking the newest (docs/benchmarks.md).
    # Local to the transaction, and put back once the query has run.
    previous, documents = session.execute(
        text("SELECT current_setting('plan_cache_mode'), "
             "set_config('plan_cache_mode', 'force_custom_plan', true), "
             "(SELECT reltuples FROM pg_class WHERE oid = 'search_documents'::regclass)")
    ).one()[::2]
    # Two ways to the newest matches, with the same result. Walking source_id backwards checks
    # each row's tsvector (read from TOAST) until MAX_RANKED + 1 match: cheap for a common word,
    # but about MAX_RANKED / share rows for a word on a few percent of pages. The GIN index
    # finds every match, with no tsvector read outside phrases, then they are sorted: cheap for
    # rare words. The planner costs each tsvector check as one operator and so walks 20,000
    # rows for a word on 5 % of 100,000 pages (0.5 s) where the index takes 50 ms; yet left to
    # itself on the index path, it reads every row for a word on 20 %. So the choice is made
    # here, from the planner's own estimate of the matches: the index while they are fewer than
    # sqrt(MAX_RANKED × documents), where both cost about the same.
    candidates = "WHERE d.{v} @@ {q}".format(v=PG_VECTOR_COLUMN, q=tsquery)
    if documents and documents > 0:
        plan = session.execute(
            text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM search_documents d {candidates}"),
            query_params,
        ).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        by_index = _pg_by_index(plan[0]["Plan"]["Plan Rows"], documents)
    else:  # never analysed: no estimate to go by
        by_index = False
    if by_index:
        # OFFSET 0 keeps the subquery apart, so source_id order cannot be walked for it.
        newest = f"""SELECT m.source_id
              FROM (SELECT d.source_id FROM search_documents d {candidates} OFFSET 0) m
              JOIN sources s ON s.id = m.source_id WHERE {where}
              ORDER BY m.source_id DESC LIMIT :cap"""
    else:
        newest = f"""SELECT d.source_id FROM search_documents d JOIN sources s ON s.id = d.source_id
              {candidates} AND {where}
              ORDER BY d.source_id DESC LIMIT :cap"""
    # The tsquery is written out where it is used, not shared through a CTE: one used twice is
    # materialised, and the planner, blind to the words, would then misjudge both paths.
    # Normalisation 1: divide by 1 + log(length), so a long page does not win by length alone.
    ranked = f"""
        SELECT d.source_id, ts_rank_cd(d.{PG_VECTOR_COLUMN}, {tsquery}, 1) AS rank
        FROM ({newest}) c
        JOIN search_documents d ON d.source_id = c.source_id"""
    result = _ranked_page(session, ranked, "", params)
    session.execute(text("SELECT set_config('plan_cache_mode', :previous, true)"),
                    {"previous": previous})
    return result


def _pg_by_index(estimate: float, documents: float) -> bool:
    """Whether the newest matches are cheaper found through the GIN index than by walking."""
    return estimate < min(math.sqrt(MAX_RANKED * documents), documents / 10)


def _ranked_page(session, ranked: str, preamble: str, params: dict) -> tuple[list, int]:
    """One page of ``ranked`` (source_id, rank) rows with their documents, and how many."""
    # The page is cut from the ranked ids alone; only its rows then fetch their document and
    # source. Joining all candidates first carried every body through the sort, and let
    # PostgreSQL hash-join the whole sources table (a scan growing with the archive).
    rows = session.execute(
        text(f"""WITH {preamble} ranked AS ({ranked}),
        page AS (SELECT source_id, rank, count(*) OVER () AS total FROM ranked
                 ORDER BY rank DESC, source_id DESC LIMIT :limit OFFSET :offset)
        SELECT {_COLUMNS}, page.rank, page.total FROM page
        JOIN search_documents d ON d.source_id = page.source_id
        JOIN sources s ON s.id = d.source_id
        ORDER BY page.rank DESC, page.source_id DESC""").columns(
            fetched_at=UTCDateTime()
        ),
        params,
    ).all()
    if rows:
        return rows, rows[0].total
    if params["offset"] == 0:
        return [], 0
    # Past the last page: count the matches, so the reader is told how many pages there are.
    total = session.execute(
        text(f"WITH {preamble} ranked AS ({ranked}) SELECT count(*) FROM ranked"), params
    ).scalar_one()
    return [], total


def _hit(row, terms: frozenset[str]) -> SearchHit:
    return SearchHit(
        source_id=row.source_id,
        capture_id=row.capture_id,
        title=row.title,
        url=row.url,
        fetched_at=row.fetched_at,
        rank=float(row.rank),
        snippet=snippet_segments(row.body or "", terms),
        title_segments=marked_segments(row.title or "", terms),
        country=row.country,
        collection=row.collection,
        category_code=row.category_code,
        category_description=row.category_description,
    )


# --- snippets -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _term_pattern(terms: frozenset[str]) -> regex.Pattern | None:
    """A pattern finding the folded ``terms`` as whole words of the original text."""
    if not terms:
        return None
    # Longest first, whole words only: "ha" must not mark the "ha" of "hanoi".
    alternatives = "|".join(
        "".join(_VARIANTS.get(c, regex.escape(c)) for c in term)
        for term in sorted(terms, key=len, reverse=True)
    )
    # \m and \M: the start and end of a Unicode word (marks included), cheaper than lookarounds.
    return regex.compile(rf"\m(?:{alternatives})\M")


def _segments(original: str, start: int, end: int, pattern) -> list[Segment]:
    """``original[start:end]`` cut into (text, is_match) at the pattern's matches."""
    segments: list[Segment] = []
    position = start
    if pattern is not None:
        for match in pattern.finditer(original, start, end):
            if match.start() > position:
                segments.append((original[position : match.start()], False))
            segments.append((original[match.start() : match.end()], True))
            position = match.end()
    if position < end:
        segments.append((original[position:end], False))
    return segments


def marked_segments(value: str, terms: frozenset[str]) -> list[Segment]:
    """All of ``value`` as segments, the query's words marked (titles)."""
    return _segments(value, 0, len(value), _term_pattern(terms))


def snippet_segments(body: str, terms: frozenset[str], width: int = SNIPPET_CHARS) -> list[Segment]:
    """About ``width`` characters of ``body`` around the densest cluster of the query's words,
    as segments; the opening of the text when none appears (a title-only match)."""
    if not body:
        return []
    pattern = _term_pattern(terms)
    # The first 200 matches are plenty to choose from, even in a page that repeats a word.
    matches = list(itertools.islice(pattern.finditer(body), 200)) if pattern is not None else []
    centre = 0
    if matches:
        # Slide a window of ``width`` characters over the matches (two pointers, linear): the
        # one holding the most distinct words wins, the earliest among equals.
        counts: dict[str, int] = {}
        best, left = 0, 0
        for match in matches:
            counts[fold(match.group())] = counts.get(fold(match.group()), 0) + 1
            while match.end() - matches[left].start() > width:
                word = fold(matches[left].group())
                counts[word] -= 1
                if not counts[word]:
                    del counts[word]
                left += 1
            if len(counts) > best:
                best, centre = len(counts), matches[left].start()
    start = max(0, centre - width // 4)
    if start > 0:  # begin at a word
        space = body.find(" ", start, centre)
        start = space + 1 if space != -1 else start
    end = min(len(body), start + width)
    if end < len(body):
        space = body.rfind(" ", max(start + 1, centre + 1), end)
        end = space if space != -1 else end
    segments = _segments(body, start, end, pattern)
    if start > 0:
        segments.insert(0, ("… ", False))
    if end < len(body):
        segments.append((" …", False))
    return segments
