"""One log pass over 10,000 fresh approvals: how long the appender takes to record, append and
publish their decision entries (after logging their captures), and then a pass with nothing new.

Run: `.venv/bin/python -m bench.log_decisions` (SQLite in a temporary directory), or
`.venv/bin/python -m bench.log_decisions postgresql` (a throwaway database on the tests'
PostgreSQL server, tests/services.py). A one-off timing, not part of `make bench`.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, insert

from accounts.models import User
from config.settings import Settings
from fragments.models import APPROVED, Fragment
from mirror.models import Capture, CapturePart, Source
from provenance.appender import append_captures
from samizdat import migrate
from samizdat.runtime import build_runtime

APPROVALS = 10_000
CAPTURES = 100  # 100 fragments per captured page


def fill(url: str) -> None:
    """``APPROVALS`` approved fragments over ``CAPTURES`` complete captures, reviewed by one user."""
    engine = create_engine(url)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(User), [{"id": 1, "name": "arch", "role": "archivist",
                                     "password_hash": "x", "active": True, "created_at": now}])
        conn.execute(insert(Source), [{"id": i + 1, "url": f"https://news.example/{i}",
                                       "interval_minutes": 60, "active": True, "created_at": now}
                                      for i in range(CAPTURES)])
        conn.execute(insert(Capture), [{"id": i + 1, "source_id": i + 1, "status": "ok",
                                        "url": f"https://news.example/{i}", "sha256": "a" * 64,
                                        "size": 1, "fetched_at": now, "complete": True}
                                       for i in range(CAPTURES)])
        conn.execute(insert(CapturePart), [{"capture_id": i + 1, "role": "manifest",
                                            "name": "manifest.json", "size": 1,
                                            "sha256": hashlib.sha256(str(i).encode()).hexdigest()}
                                           for i in range(CAPTURES)])
        conn.execute(insert(Fragment), [{
            "id": hashlib.sha256(str(i).encode()).hexdigest()[:32],
            "capture_id": i % CAPTURES + 1, "position": i, "status": APPROVED,
            "text": f"Fragment {i}: the authorities blocked this report about detained bloggers.",
            "source_url": f"https://news.example/{i % CAPTURES}", "sha256": "a" * 64,
            "fetched_at": now, "created_at": now, "reviewed_by": "arch",
            "reviewed_at": now + timedelta(milliseconds=i),
        } for i in range(APPROVALS)])
    engine.dispose()


def main(database: str) -> None:
    """Fill, run one pass, print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        if database == "postgresql":
            from tests.services import create_postgres_database, drop_postgres_database

            url = create_postgres_database()
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        fill(url)
        runtime = build_runtime(Settings(data_dir=Path(tmp) / "data", database_url=url))
        try:
            start = time.perf_counter()
            report = append_captures(runtime)
            elapsed = time.perf_counter() - start
            assert (report.appended, report.decisions) == (CAPTURES, APPROVALS), report
            start = time.perf_counter()
            idle = append_captures(runtime)
            idle_elapsed = time.perf_counter() - start
            assert idle.decisions == 0
        finally:
            runtime.dispose()
            if database == "postgresql":
                drop_postgres_database(url)
    print(f"{url.split(':')[0]}: one pass logged {report.appended} captures and "
          f"{report.decisions} approvals in {elapsed:.2f} s "
          f"({report.decisions / elapsed:,.0f} decisions/s); the next pass, with nothing new, "
          f"{idle_elapsed:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite")
