"""The fragment tables: short attributed excerpts (referring to their capture by key), the
collections they are curated in, and their tags."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from samizdat.db import Base, UTCDateTime, utcnow

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)


def version_of(text: str) -> str:
    """A short digest of a fragment text: what a reviewer saw, carried back with their decision."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Fragment(Base):
    """One to three sentences of a captured page, with everything needed to find and verify it."""

    __tablename__ = "fragments"
    # The review queue lists one status newest capture first; this index serves it without a sort.
    __table_args__ = (Index("ix_fragments_status_fetched_at", "status", "fetched_at"),)

    # Stable id derived from the source URL and the normalised text: re-splitting is idempotent.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    capture_id: Mapped[int] = mapped_column(
        ForeignKey("captures.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    # The text as split, kept on the first edit so an archivist's change can always be undone.
    original_text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))  # ISO 639-1 code, detected
    status: Mapped[str] = mapped_column(String(16), index=True)
    source_url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(Text)
    # Attribution copied from the source at split time: fragments never reach into mirror's tables.
    site_name: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    collection: Mapped[str | None] = mapped_column(String(100), index=True)
    category_code: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    cid: Mapped[str | None] = mapped_column(String(128))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Names, not user ids: the record of who decided must outlive the account.
    edited_by: Mapped[str | None] = mapped_column(String(100))
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    # Indexed: the log's decision pass reads the newest and the recent ones every 30 s.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    @property
    def edited(self) -> bool:
        """Whether an archivist changed the text the capture was split into."""
        return self.original_text is not None

    @property
    def text_version(self) -> str:
        """The digest of the current text (see :func:`version_of`)."""
        return version_of(self.text)

    @property
    def split_text(self) -> str:
        """The text as split from the capture: what the archived page really says."""
        return self.original_text if self.original_text is not None else self.text


class Collection(Base):
    """A named group of sources (e.g. "vietnam"); fragments of an auto-approve one skip review."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FragmentTag(Base):
    """One tag on one fragment; the pair is the key, so a tag is never on a fragment twice."""

    __tablename__ = "fragment_tags"

    fragment_id: Mapped[str] = mapped_column(
        ForeignKey("fragments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
