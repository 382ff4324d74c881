"""The fragment table: short attributed excerpts, referring to their capture by key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from samizdat.db import Base, UTCDateTime, utcnow

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


class Fragment(Base):
    """One to three sentences of a captured page, with everything needed to find and verify it."""

    __tablename__ = "fragments"

    # Stable id derived from the source URL and the normalised text: re-splitting is idempotent.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    capture_id: Mapped[int] = mapped_column(
        ForeignKey("captures.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))  # ISO 639-1 code, detected
    status: Mapped[str] = mapped_column(String(16), index=True)
    source_url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    cid: Mapped[str | None] = mapped_column(String(128))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
