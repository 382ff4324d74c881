"""Tables for sources (pages to keep alive) and captures (one fetch of one page at one time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from samizdat.db import Base, UTCDateTime, utcnow


class Source(Base):
    """A page an archivist wants mirrored, identified by its normalised URL."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    country: Mapped[str | None] = mapped_column(String(2))
    collection: Mapped[str | None] = mapped_column(String(100))
    interval_minutes: Mapped[int] = mapped_column(Integer)
    # Citizen Lab test-list categories, e.g. HUMR / "Human Rights Issues".
    category_code: Mapped[str | None] = mapped_column(String(32))
    category_description: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # How it is captured: "http", "browser" or "auto" (HTTP first, the browser when the result
    # looks script-built). Checked by mirror.sources.clean_capture_mode wherever it enters.
    capture_mode: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleting a source only hides it: its captures (and their fragments) stay in the archive.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    captures: Mapped[list[Capture]] = relationship(
        back_populates="source", order_by="Capture.fetched_at"
    )


class Capture(Base):
    """One fetch of one source: either stored bytes with their addresses, or a failure reason."""

    __tablename__ = "captures"
    # The reader's listing groups successful captures per source (archive/listing.py).
    __table_args__ = (
        Index("ix_captures_source_id_status_fetched_at", "source_id", "status", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # "ok", "unchanged" or "failed"
    url: Mapped[str] = mapped_column(String(2048))
    final_url: Mapped[str | None] = mapped_column(String(2048))
    http_status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(Integer)
    local_key: Mapped[str | None] = mapped_column(String(255))
    s3_key: Mapped[str | None] = mapped_column(String(255))
    cid: Mapped[str | None] = mapped_column(String(128))
    error_reason: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    charset: Mapped[str | None] = mapped_column(String(40))
    # An "unchanged" capture points at the earlier capture whose bytes it matched.
    same_as_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id", ondelete="SET NULL"))
    # True once every part is stored and verified in every configured back-end.
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    # When processing (split, offline copy) was claimed: None means not yet claimed. A claim
    # without processed_at older than the processing lease is a crashed run, taken again.
    split_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the fragments and the offline copy were committed (with them, in one transaction).
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How this capture was made: "http" or "browser"; None for captures made before it was recorded.
    capture_method: Mapped[str | None] = mapped_column(String(16))
    # Why: for a source in auto mode that went to the browser, what made the HTTP result look
    # script-built (browser.needed); None otherwise.
    method_reason: Mapped[str | None] = mapped_column(String(255))
    # The limit a browser capture ended at (wall-clock, requests, bytes, scroll, height), keeping
    # what it had by then; None when it finished by itself.
    limited_by: Mapped[str | None] = mapped_column(String(64))

    source: Mapped[Source] = relationship(back_populates="captures")
    parts: Mapped[list[CapturePart]] = relationship(
        back_populates="capture", order_by="CapturePart.id", cascade="all, delete-orphan"
    )


class CapturePart(Base):
    """One file of a capture (page, WARC, manifest, asset), stored by its sha256."""

    __tablename__ = "capture_parts"
    __table_args__ = (UniqueConstraint("capture_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    capture_id: Mapped[int] = mapped_column(ForeignKey("captures.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # page, warc, manifest, asset
    name: Mapped[str] = mapped_column(String(512))  # its path inside the capture's IPFS directory
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(255))

    capture: Mapped[Capture] = relationship(back_populates="parts")


class Replica(Base):
    """The state of one blob (by sha256) in one remote back-end: pending, stored or failed."""

    __tablename__ = "replicas"
    __table_args__ = (UniqueConstraint("sha256", "backend"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending, stored, failed
    locator: Mapped[str | None] = mapped_column(String(255))  # S3 key or CID once stored
    size: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    """One capture run of one source: queued, running, then succeeded/unchanged/failed."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, request, cli
    requested_by: Mapped[str | None] = mapped_column(String(100))
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id", ondelete="SET NULL"))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A running job's lease: its process renews this; a stale one means the process died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(100))  # host:pid of the process running it
