"""A real capture for provenance tests: made by the pipeline, downloaded as readers get it."""

from __future__ import annotations

from pathlib import Path

from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from tests.sites import seed_names


def capture_and_download(app, client, site, folder: Path) -> int:
    """Capture a page of the loopback site with the pipeline and download every file of it, one
    by one, through the reader's URLs into ``folder``; returns the capture's id."""
    runtime = app.extensions["samizdat"]
    with runtime.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source
        session.commit()
        source_id = source.id
    capture_id = capture_source(runtime, source_id).capture_id
    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        assert capture.complete
        for part in capture.parts:
            response = client.get(f"/captures/{capture.id}/files/{part.name}")
            assert response.status_code == 200, part.name
            target = folder / part.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(response.data)
    return capture_id
