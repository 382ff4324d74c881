"""Static export of the reader archive: 10,000 captures, then an incremental export after one new
capture, against copying the same files (the least any export must do) in the same run.

Rows and small blobs are inserted straight into SQLite and the local spool (capturing 10,000
pages would measure the fetcher); the export goes to the local public directory only (no S3 or
IPFS upload). The pages are the app's real reader pages: front page, listing, timelines, reader
views (each capture's text extracted from its page) and replay pages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from archive.static_copy import EXPORT_LINK, publish_static
from config.settings import Settings
from fragments.models import Fragment
from mirror.models import Capture, CapturePart, Source
from samizdat import migrate
from samizdat.app import create_app
from samizdat.db import utcnow
CAPTURES = int(os.environ.get("BENCH_STATIC_CAPTURES", "10000"))
PER_SOURCE = 10  # ten captures per source


def _blob(kind: str, capture_id: int) -> bytes:
    if kind == "offline":
        return (f"<!doctype html><html><head><meta charset=utf-8><title>Bài {capture_id}</title></head>"
                f"<body><h1>Bài viết {capture_id}</h1>" + "<p>Hà Nội, tin tức bị chặn. </p>" * 20
                + "</body></html>").encode()
    if kind == "page":
        return (f"<!doctype html><html><head><script>track()</script><title>Bài {capture_id}</title>"
                f"</head><body>" + "<p>Hà Nội, tin tức bị chặn. </p>" * 20 + "</body></html>").encode()
    return f"WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: {capture_id}\r\n\r\n".encode() * 8


def _seed(app, start: int, count: int) -> None:
    """Insert ``count`` captures (ids from ``start``) with an offline copy, the page and a WARC."""
    rt = app.extensions["samizdat"]
    spool = rt.settings.spool_dir
    now = utcnow()
    sources, captures, parts, fragments = [], [], [], []
    for cid in range(start, start + count):
        sid = (cid - 1) // PER_SOURCE + 1
        if (cid - 1) % PER_SOURCE == 0:
            sources.append(dict(id=sid, url=f"https://blocked.example/{sid}", interval_minutes=60,
                                active=True, created_at=now))
        captures.append(dict(id=cid, source_id=sid, status="ok", url=f"https://blocked.example/{sid}",
                             title=f"Bài viết {cid}", sha256="0" * 64, size=1,
                             content_type="text/html", charset="utf-8",
                             fetched_at=now + timedelta(seconds=cid), processed_at=now + timedelta(seconds=cid)))
        for role, name, ctype in (("offline", "offline.html", "text/html"), ("page", "index.html", "text/html"),
                                  ("warc", "capture.warc.gz", "application/warc")):
            data = _blob(role, cid)
            sha = hashlib.sha256(data).hexdigest()
            # The local store's layout, written without its fsync per blob (seeding is not measured).
            path = spool / sha[:2] / sha[2:4] / sha
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            parts.append(dict(capture_id=cid, role=role, name=name, sha256=sha, size=len(data),
                              content_type=ctype))
        fragments.append(dict(id=f"{cid:032x}", capture_id=cid, position=0, status="pending",
                              text=f"Hà Nội, tin tức bị chặn, bài {cid}. " * 4, source_url=f"https://blocked.example/{sid}",
                              title=f"Bài viết {cid}", sha256="0" * 64, fetched_at=now))
    with rt.Session() as session:
        for table, rows in ((Source, sources), (Capture, captures), (CapturePart, parts), (Fragment, fragments)):
            if rows:
                session.execute(insert(table), rows)
        session.commit()


def _tree_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def run() -> str:
    """Measure and return the Markdown section for docs/benchmarks.md."""
    tmp = Path(tempfile.mkdtemp(prefix="samizdat-bench-static-"))
    try:
        url = f"sqlite:///{tmp / 'samizdat.db'}"
        migrate.upgrade(url)
        app = create_app(Settings(data_dir=tmp / "data", database_url=url))
        started = time.monotonic()
        _seed(app, 1, CAPTURES)
        seed_seconds = time.monotonic() - started

        started = time.monotonic()
        full = publish_static(app)
        full_seconds = time.monotonic() - started
        export = (app.extensions["samizdat"].settings.public_path / EXPORT_LINK).resolve()
        files, size = _tree_bytes(export)

        # The peer: copying the same tree, file by file (what any export writes at the least).
        started = time.monotonic()
        shutil.copytree(export, tmp / "copy")
        copy_seconds = time.monotonic() - started

        _seed(app, CAPTURES + 1, 1)
        started = time.monotonic()
        inc = publish_static(app)
        inc_seconds = time.monotonic() - started
        app.extensions["samizdat"].dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join([
        "## Static export",
        "",
        f"`BENCH_STATIC_CAPTURES={CAPTURES} .venv/bin/python -m bench bench_static`: "
        f"{CAPTURES:,} captures ({CAPTURES // PER_SOURCE:,} sources × {PER_SOURCE}; an offline copy, the "
        "page and a WARC each, inserted directly), SQLite, exported to the local public directory only "
        "(no S3 or IPFS upload), the real reader pages (front page, listing 25 a page, timelines, "
        "reader views with each page's text extracted, replay pages), on this 2-core machine beside "
        f"other work. Seeding took {seed_seconds:.0f} s.",
        "",
        "| Measure | Value | Peer |",
        "| --- | --- | --- |",
        f"| full export, {CAPTURES:,} captures | {full_seconds:.1f} s, {files:,} files, {size / 2**20:.1f} MiB "
        f"({full.pages:,} pages rendered; search index {full.search_index_bytes / 1024:.0f} KiB) | "
        f"copying the same tree: {copy_seconds:.1f} s → **{full_seconds / copy_seconds:.1f}×** |",
        f"| incremental export after one new capture | {inc_seconds:.1f} s: {inc.written} written "
        f"({inc.bytes_written / 1024:.0f} KiB), {inc.unchanged:,} unchanged (hard links), {inc.deleted} deleted | "
        f"copying the whole tree: {copy_seconds:.1f} s → **{inc_seconds / copy_seconds:.1f}×**; the full "
        f"export: **{inc_seconds / full_seconds:.2f}×** |",
        "",
    ])


if __name__ == "__main__":
    print(run())
