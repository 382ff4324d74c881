"""Publishing the log to S3: the cost of one checkpoint (one new entry) at 100,000 entries.

Peer in the same run: the first publish of the same log (every file sent), against which the
incremental publish shows what the record of sent files and the immutable full tiles save.
moto's S3 server on loopback, capture-sized entries (~700 bytes: a URL, a time, a manifest and
five parts with their sha256 and CID).

Run: `.venv/bin/python -m bench bench_log_publish` (SAMIZDAT_BENCH_LOG_ENTRIES to change the size).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

ENTRIES = int(os.environ.get("SAMIZDAT_BENCH_LOG_ENTRIES", "100000"))
BATCH = 10_000


def _cid(n: int) -> str:
    """A CIDv1-shaped name (base32, lower case) unique to ``n``."""
    return f"bafkrei{n:052x}".translate(str.maketrans("0189", "wxyz"))


def _entry(i: int) -> bytes:
    """A capture entry of realistic size, in the log's own canonical format."""
    from datetime import datetime, timezone

    from provenance.entries import CaptureFacts, PartRef, capture_entry

    parts = tuple(PartRef(name, f"{(i * 7 + k):064x}", _cid(i * 13 + k))
                  for k, name in enumerate(("assets/a.css", "capture.warc.gz", "index.html",
                                            "offline.html", "page.html")))
    facts = CaptureFacts(f"https://news.example/articles/{i}.html",
                         datetime(2026, 12, 7, tzinfo=timezone.utc), parts)
    return capture_entry(facts, f"{i:064x}").encode()


def run() -> str:
    """Measure and return a Markdown section for docs/benchmarks.md."""
    from config.settings import Settings
    from provenance.appender import log_signer, publish_verifier_key
    from provenance.log import LogWriter
    from provenance.publish import publish_log
    from tests import services

    for key, value in services.AWS_TEST_ENV.items():
        os.environ.setdefault(key, value)
    work = Path(tempfile.mkdtemp(prefix="samizdat-bench-log-"))
    s3 = services.start_s3_server()
    try:
        settings = Settings(data_dir=work, database_url=f"sqlite:///{work / 'bench.db'}",
                            s3_endpoint_url=s3.endpoint_url, s3_bucket="bench-log")
        signer = log_signer(settings)
        with LogWriter(settings.log_path, signer, settings.log_origin_name) as writer:
            for start in range(0, ENTRIES, BATCH):
                writer.append(_entry(i) for i in range(start, min(ENTRIES, start + BATCH)))
            writer.publish()
        publish_verifier_key(settings.log_path, signer.verifier.vkey)
        started = time.perf_counter()
        first = publish_log(settings)
        first_s = time.perf_counter() - started
        with LogWriter(settings.log_path, signer, settings.log_origin_name) as writer:
            writer.append([_entry(ENTRIES)])
            writer.publish()
        started = time.perf_counter()
        one = publish_log(settings)
        one_s = time.perf_counter() - started
        started = time.perf_counter()
        idle = publish_log(settings)
        idle_s = time.perf_counter() - started
        assert not (first.failures or one.failures or idle.failures)
        return "\n".join([
            f"### Publishing the log to S3 (moto), {ENTRIES:,} entries",
            "",
            "| publish | files sent | bytes sent | seconds |",
            "| --- | --- | --- | --- |",
            f"| first (whole log) | {first.uploaded:,} | {first.bytes:,} | {first_s:.2f} |",
            f"| one new entry (new checkpoint) | {one.uploaded:,} | {one.bytes:,} | {one_s:.3f} |",
            f"| nothing new | {idle.uploaded:,} | {idle.bytes:,} | {idle_s:.3f} |",
            "",
            f"One new entry sends {', '.join(one.sent['s3'])}.",
        ])
    finally:
        services.stop_process(s3.proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(run())
