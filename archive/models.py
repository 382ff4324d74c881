"""The search index's table: one document per source, the text of its latest successful capture.

The engine-specific structures that make it searchable are created by migration 0007 and are not
modelled here: an FTS5 virtual table ``search_fts`` on SQLite (rowid = source id, holding the
folded title and text), and on PostgreSQL a generated ``search_vector`` tsvector column with a GIN
index, built with the ``samizdat_search`` text search configuration (simple + unaccent).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from samizdat.db import UNMODELLED_KEY, Base, UTCDateTime, utcnow

SQLITE_FTS_TABLE = "search_fts"
PG_VECTOR_COLUMN = "search_vector"
PG_TEXT_SEARCH_CONFIG = "samizdat_search"

# Created by the migration for one engine only; model comparisons leave them alone.
Base.metadata.info.setdefault(UNMODELLED_KEY, set()).update(
    {SQLITE_FTS_TABLE}
    | {f"{SQLITE_FTS_TABLE}_{shadow}" for shadow in ("data", "idx", "content", "docsize", "config")}
    | {f"search_documents.{PG_VECTOR_COLUMN}"}
    | {f"search_documents.ix_search_documents_{PG_VECTOR_COLUMN}"}
)


class SearchDocument(Base):
    """What search knows of one source: its latest successful capture's title, URL and main text."""

    __tablename__ = "search_documents"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    capture_id: Mapped[int] = mapped_column(
        ForeignKey("captures.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2048))
    # The extracted main text, as shown in snippets (capped, see archive.index.MAX_TEXT_CHARS).
    body: Mapped[str] = mapped_column(Text, default="")
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The latest processed_at among the source's successful captures when it was indexed: the
    # indexing task's watermark is the largest of these.
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
