"""Which capture or curation decision is at which index of the provenance log (the log itself
lives in its tiles)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from samizdat.db import Base, UTCDateTime, utcnow


class LoggedCapture(Base):
    """A capture's entry at ``log_index``: recorded before it is appended, ``published`` once a
    signed checkpoint covers it (provenance.archive_log says why in that order)."""

    __tablename__ = "log_captures"

    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # SET NULL, not CASCADE: the log never forgets an entry, so neither may its index here.
    capture_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("captures.id", ondelete="SET NULL"), unique=True)
    # The entry's exact bytes (canonical JSON), so a crashed append is replayed byte for byte.
    entry: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoggedDecisionRow(Base):
    """A curation decision's entry at ``log_index`` (same index sequence as ``log_captures``):
    recorded before it is appended, ``published`` once a signed checkpoint covers it."""

    __tablename__ = "log_decisions"

    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # No foreign key: the log never forgets a decision, and a fragment rebuilt under the same id
    # (ids derive from URL and text) must find its earlier decisions again.
    fragment_id: Mapped[str] = mapped_column(String(32), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    text_sha256: Mapped[str] = mapped_column(String(64))
    # The fragment's reviewed_at when this was recorded: a different one later means a new review
    # (whose time and archivist the next entry carries); the same one, a change no review made.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entry: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
