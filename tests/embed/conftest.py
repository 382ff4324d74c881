"""Fixtures of the embed tests: an app on the embedded defaults and fragments stored directly."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from fragments.models import APPROVED, Fragment
from mirror.models import Capture, CapturePart, Source
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.conftest import log_decisions


@pytest.fixture
def local_app(local_settings):
    """The app on SQLite and the local store only (no S3, no IPFS)."""
    application = create_app(local_settings)
    yield application
    application.extensions["samizdat"].dispose()


def add_fragments(app, count, *, collection="vietnam", language="vi", status=APPROVED,
                  text_chars=200, start=0, text="x", logged=True):
    """Store ``count`` fragments under one capture, decided ``status`` one second apart, then
    (``logged``) run a log pass, as an archivist's approval is public only once the log holds it.

    The capture has a manifest, so the log appender (run by every publish) logs it and then the
    fragments' decisions: packs and every public surface carry only what the log holds.
    """
    rt = app.extensions["samizdat"]
    now = utcnow()
    with rt.Session() as session:
        source = Source(url=f"https://example.org/{collection}/{start}", interval_minutes=60,
                        collection=collection, active=True)
        session.add(source)
        session.flush()
        capture = Capture(source_id=source.id, status="ok", url=source.url, sha256="a" * 64,
                          size=1, fetched_at=now, complete=True)
        session.add(capture)
        session.flush()
        session.add(CapturePart(capture_id=capture.id, role="manifest", name="manifest.json",
                                sha256=hashlib.sha256(source.url.encode()).hexdigest(), size=1))
        for i in range(start, start + count):
            body = (f"{text} {i} " * text_chars)[:text_chars]
            session.add(Fragment(
                id=hashlib.sha256(f"{collection}{i}".encode()).hexdigest()[:32],
                capture_id=capture.id, position=i, text=body, language=language, status=status,
                source_url=source.url, title="Tiêu đề", collection=collection, sha256="a" * 64,
                fetched_at=now, reviewed_at=now + timedelta(seconds=i), reviewed_by="arch",
            ))
        session.commit()
    if logged:
        log_decisions(app)


