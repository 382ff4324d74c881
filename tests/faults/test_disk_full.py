"""The disk fills during a capture's spool write: the capture fails cleanly and nothing is stored.

A real refusal: `flask mirror run` runs under RLIMIT_FSIZE (SIGXFSZ ignored), so the kernel
refuses the spool write past the limit with EFBIG, as a full disk refuses it with ENOSPC
(tests/security/test_spool_failures.py does the same for uploads). PostgreSQL, S3 and IPFS are
other processes, so only the spool meets the limit. Once there is room, the next run succeeds.
"""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from mirror.models import Capture, Job, Replica
from mirror.sources import add_source
from samizdat.runtime import build_runtime
from tests.conftest import _truncate_all, make_settings
from tests.services import ROOT, settings_env
from tests.sites import seed_names

LIMIT = 2048  # bytes per file: the secret key fits, an article page (about 5 kB) does not

_RUN_LIMITED = """
import resource, signal, sys
from flask.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write() instead of a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["flask", "mirror", "run", "{source_id}"]
main()
"""


def mirror_run(settings, source_id: int, limit: int | None) -> subprocess.CompletedProcess:
    """`flask mirror run SOURCE_ID`, under a file-size limit when ``limit`` is given."""
    if limit is None:
        command = [sys.executable, "-m", "flask", "mirror", "run", str(source_id)]
    else:
        command = [sys.executable, "-c", _RUN_LIMITED.format(limit=limit, source_id=source_id)]
    return subprocess.run(command, cwd=ROOT, env=settings_env(settings, SAMIZDAT_SECRET_KEY="tests"),
                          capture_output=True, text=True, timeout=120)


def test_a_full_disk_fails_the_capture_cleanly_and_the_next_run_succeeds(
    tmp_path, postgres_url, s3_server, ipfs_node, bucket, site
):
    _truncate_all(postgres_url)
    settings = make_settings(tmp_path, postgres_url, s3_endpoint_url=s3_server.endpoint_url,
                             s3_bucket=bucket, ipfs_api=ipfs_node.api_multiaddr)
    rt = build_runtime(settings)
    try:
        with rt.Session() as session:
            source_id = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source.id
            session.commit()

        full = mirror_run(settings, source_id, LIMIT)
        output = full.stdout + full.stderr
        assert "0 captured, 0 unchanged, 1 failed" in full.stdout, output
        assert "(storage_full)" in full.stderr and "File too large" in full.stderr, output
        assert "Traceback" not in output
        with rt.Session() as session:
            (capture,) = session.scalars(select(Capture)).all()
            (job,) = session.scalars(select(Job)).all()
            assert (capture.status, capture.error_reason) == ("failed", "storage_full")
            assert capture.sha256 is None and not capture.parts and not capture.complete
            assert job.state == "failed" and "File too large" in job.reason
            assert session.scalars(select(Replica)).all() == []  # nothing to replicate
        assert list(settings.spool_dir.rglob(".tmp-*")) == []  # no half-written file
        assert [p for p in settings.spool_dir.rglob("*") if p.is_file()] == []

        # Room again: the same source is captured, stored and replicated.
        again = mirror_run(settings, source_id, None)
        assert "1 captured, 0 unchanged, 0 failed" in again.stdout, again.stdout + again.stderr
        with rt.Session() as session:
            ok = session.scalars(select(Capture).where(Capture.status == "ok")).one()
            assert ok.complete
            assert {r.state for r in session.scalars(select(Replica))} == {"stored"}
            assert all(rt.stores["local"].exists(p.sha256) for p in ok.parts)
    finally:
        rt.dispose()
