"""Bulk import of sources from a Citizen Lab test-list CSV or a plain list of URLs.

Citizen Lab lists (github.com/citizenlab/test-lists) have the header
``url,category_code,category_description,date_added,source,notes`` and one file per country
(``vn.csv``). A plain list has one URL per line; blank lines and ``#`` comments are skipped.
Importing is idempotent: URLs are normalised and anything already known is counted, not added.

Every new source gets the import's capture mode (auto unless chosen: a country's list mixes
plain news sites with script-built ones, and auto captures each the way it needs). A CSV may
also carry a ``capture_mode`` column of its own, after or instead of Citizen Lab's: a non-empty
cell sets that row's mode, an empty one leaves the import's.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO
from dataclasses import dataclass, field
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.audit import Actor, record
from mirror.models import Source
from mirror.sources import (
    DEFAULT_CAPTURE_MODE,
    check_interval,
    clean_capture_mode,
    clean_collection,
    clean_country,
)
from mirror.urls import normalize_url
from samizdat.errors import InvalidURLError, SamizdatError
from samizdat.text import unstorable_reason

CITIZENLAB_HEADER = ["url", "category_code", "category_description", "date_added", "source", "notes"]
MAX_IMPORT_BYTES = 50 * 1024 * 1024
# One import (the page, the API or `flask sources import`) takes at most this many rows, valid
# or not: one limit, so a file the CLI takes is never refused by the page. Citizen Lab's largest
# list has a few thousand, so a bigger file is a mistake or an attack; and an import is one
# transaction whose new rows are held in memory, so a million-row file is refused in one line
# instead of growing the process by gigabytes (tests/security/test_huge_inputs.py measures it).
MAX_IMPORT_ROWS = 20_000
# An import reports every invalid row in its count, but echoes back only the first ones, each
# reason cut short: a file of garbage must not come back many times larger than it went in.
MAX_REPORTED_INVALID = 100
MAX_REASON_LENGTH = 200
# The widths of the category columns of sources (VARCHAR on PostgreSQL).
MAX_CATEGORY_CODE_LENGTH = 32
MAX_CATEGORY_DESCRIPTION_LENGTH = 255
_COUNTRY_FILE = re.compile(r"^([a-z]{2})\.(csv|txt)$", re.I)


class ImportFileError(SamizdatError):
    """The file as a whole cannot be imported (not text, wrong header, too large)."""


@dataclass(frozen=True)
class ImportRow:
    """One candidate source read from a file, with the line it came from."""

    line: int
    url: str
    category_code: str | None = None
    category_description: str | None = None
    capture_mode: str | None = None  # the row's own mode, None for the import's


@dataclass
class ImportSummary:
    """What an import did: added, already present, and invalid rows with their reasons.

    ``invalid_count`` counts every invalid row; ``invalid`` lists only the first
    MAX_REPORTED_INVALID of them, each reason at most MAX_REASON_LENGTH characters.
    """

    added: list[int] = field(default_factory=list)
    already_present: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    invalid_count: int = 0

    def add_invalid(self, line: int, reason: str) -> None:
        """Count an invalid row, and keep it for the report while there is room."""
        self.invalid_count += 1
        if len(self.invalid) < MAX_REPORTED_INVALID:
            if len(reason) > MAX_REASON_LENGTH:
                reason = reason[: MAX_REASON_LENGTH - 1] + "…"
            self.invalid.append((line, reason))

    def lines(self) -> list[str]:
        """A human summary, one line per fact, then one line per reported invalid row."""
        out = [
            f"{len(self.added)} added, {self.already_present} already present, "
            f"{self.invalid_count} invalid"
        ]
        out += [f"line {line}: {reason}" for line, reason in self.invalid]
        if self.invalid_count > len(self.invalid):
            out.append(f"… and {self.invalid_count - len(self.invalid)} more invalid lines")
        return out


def country_from_filename(filename: str | None) -> str | None:
    """``vn.csv`` → ``VN``: Citizen Lab names each country's list by its two-letter code."""
    if not filename:
        return None
    match = _COUNTRY_FILE.match(PurePath(filename).name)
    return match.group(1).upper() if match else None


def read_import_file(fh: BinaryIO) -> bytes:
    """Read an import file, never more than one byte past MAX_IMPORT_BYTES (a 10 GB file or an
    endless pipe costs 50 MiB of memory, not all of it); ImportFileError when larger."""
    data = fh.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    return data


def decode_import(data: bytes) -> str:
    """Decode an uploaded file as UTF-8 (a BOM is dropped); refuse binary data clearly."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    if b"\x00" in data[:8192]:
        raise ImportFileError("file is binary, not a CSV or a list of URLs")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"file is not UTF-8 text (byte {exc.start})") from None


def read_rows(text: str) -> Iterator[ImportRow | tuple[int, str]]:
    """Yield ImportRow for each candidate, or (line, reason) for a row that is malformed."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    if first.startswith("url,"):
        yield from _read_csv(text)
    else:
        yield from _read_plain(text)


def _read_csv(text: str) -> Iterator[ImportRow | tuple[int, str]]:
    # newline="" semantics: the csv module handles \r\n and quoted newlines itself.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error):
        raise ImportFileError("empty or unreadable CSV header") from None
    if "url" not in header:
        raise ImportFileError("CSV header has no url column")
    if (header[: len(CITIZENLAB_HEADER)] != CITIZENLAB_HEADER
            and [h for h in header if h != "capture_mode"] != ["url"]):
        missing = [h for h in CITIZENLAB_HEADER if h not in header]
        if missing:
            raise ImportFileError(
                f"not a Citizen Lab test-list header (missing {', '.join(missing)}); "
                f"expected {','.join(CITIZENLAB_HEADER)}"
            )
    index = {name: i for i, name in enumerate(header)}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield (reader.line_num, f"malformed CSV: {exc}")
            continue
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield (line, f"expected {len(header)} fields, found {len(row)}")
            continue

        def cell(name: str) -> str | None:
            value = row[index[name]].strip() if name in index else ""
            return value or None

        yield ImportRow(line, row[index["url"]].strip(), cell("category_code"),
                        cell("category_description"), cell("capture_mode"))


def _read_plain(text: str) -> Iterator[ImportRow | tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        yield ImportRow(number, line)


def _category_problem(row: ImportRow) -> str | None:
    """Why a row's category cells cannot be stored, or None when they can."""
    for name, value, limit in (
        ("category_code", row.category_code, MAX_CATEGORY_CODE_LENGTH),
        ("category_description", row.category_description, MAX_CATEGORY_DESCRIPTION_LENGTH),
    ):
        if value is None:
            continue
        if len(value) > limit:
            return f"{name} must be at most {limit} characters"
        reason = unstorable_reason(value)  # the binary check only reads the first 8 KiB
        if reason:
            return f"{name} {reason}"
    return None


def import_sources(
    session: Session,
    data: bytes,
    filename: str | None,
    interval_minutes: int,
    country: str | None = None,
    collection: str | None = None,
    progress: Callable[[int], None] | None = None,
    max_rows: int | None = MAX_IMPORT_ROWS,
    active: bool = True,
    actor: Actor | None = None,
    capture_mode: object = DEFAULT_CAPTURE_MODE,
) -> ImportSummary:
    """Import every valid row in one transaction (the caller commits); idempotent.

    ``progress`` is called with the number of rows handled since the last call. A file with more
    than ``max_rows`` rows (None: no limit) is refused whole with ImportFileError, as is a bad
    country or collection; nothing is written then. ``active=False`` adds the new sources paused,
    so a long list is not all due at once; rows already present keep their state, and their
    capture mode. ``capture_mode`` is the new sources' mode unless a row has its own. With
    ``actor``, one audit entry records the file and what it did.
    """
    check_interval(interval_minutes)
    text = decode_import(data)
    try:
        country = clean_country(country or country_from_filename(filename))
        collection = clean_collection(collection)
        capture_mode = clean_capture_mode(capture_mode)
    except SamizdatError as exc:
        raise ImportFileError(str(exc)) from None
    known = set(session.scalars(select(Source.url)))
    summary = ImportSummary()
    new_sources: list[Source] = []
    for count, item in enumerate(read_rows(text), start=1):
        if max_rows is not None and count > max_rows:
            raise ImportFileError(
                f"the file has more than {max_rows} rows; split it into smaller files"
            )
        if progress:
            progress(1)
        if isinstance(item, tuple):
            summary.add_invalid(*item)
            continue
        problem = _category_problem(item)
        if problem:
            summary.add_invalid(item.line, problem)
            continue
        row_mode = capture_mode
        if item.capture_mode is not None:
            try:
                row_mode = clean_capture_mode(item.capture_mode)
            except SamizdatError as exc:
                summary.add_invalid(item.line, str(exc))
                continue
        try:
            url = normalize_url(item.url)
        except InvalidURLError as exc:
            summary.add_invalid(item.line, str(exc))
            continue
        if url in known:
            summary.already_present += 1
            continue
        known.add(url)
        new_sources.append(
            Source(
                url=url,
                interval_minutes=interval_minutes,
                country=country,
                collection=collection,
                category_code=item.category_code,
                category_description=item.category_description,
                capture_mode=row_mode,
                active=active,
            )
        )
    session.add_all(new_sources)
    session.flush()
    summary.added = [s.id for s in new_sources]
    if actor is not None:
        record(session, actor, "source.import", "source", None, {
            "file": filename, "added": len(summary.added), "ids": summary.added,
            "already_present": summary.already_present, "invalid": summary.invalid_count,
            "country": country, "collection": collection, "active": active,
            "capture_mode": capture_mode,
        })
    return summary
