"""The scheduler's idle log pass over curation decisions, at 100,000 approved and logged fragments.

What the appender's decision step (provenance.decisions.new_decision_rows) costs every 30 s when
nothing changed, on SQLite and on PostgreSQL. Peers in the same run, on the same database: the
full comparison every pass did before (every approved fragment joined to its latest logged
decision; forced here by forgetting what the last pass saw) and a plain ``SELECT 1`` (the floor
of any query). Then one approval is made, to show the next pass finds it (one row).

Run: `.venv/bin/python -m bench bench_decision_pass` (SAMIZDAT_BENCH_DECISION_FRAGMENTS to change
the size; PostgreSQL is the tests' server, tests/services.py).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.orm import Session

from config.settings import Settings
from fragments.models import APPROVED, Fragment
from mirror.models import Capture, CapturePart, Source
from provenance import decisions
from provenance.decisions import new_decision_rows
from provenance.entries import text_sha256
from provenance.models import LoggedCapture, LoggedDecisionRow
from samizdat import migrate

FRAGMENTS = int(os.environ.get("SAMIZDAT_BENCH_DECISION_FRAGMENTS", "100000"))
PER_CAPTURE = 100
ROUNDS = 7


def _text(i: int) -> str:
    return f"Fragment {i}: the authorities blocked this report about detained bloggers."


def fill(url: str) -> None:
    """``FRAGMENTS`` approved fragments, each with its capture and its approval already logged."""
    engine = create_engine(url)
    now = datetime.now(timezone.utc) - timedelta(days=1)
    captures = FRAGMENTS // PER_CAPTURE
    with engine.begin() as conn:
        conn.execute(insert(Source), [{"id": c + 1, "url": f"https://news.example/{c}",
                                       "interval_minutes": 60, "active": True, "created_at": now}
                                      for c in range(captures)])
        conn.execute(insert(Capture), [{"id": c + 1, "source_id": c + 1, "status": "ok",
                                        "url": f"https://news.example/{c}", "sha256": "a" * 64,
                                        "size": 1, "fetched_at": now, "complete": True}
                                       for c in range(captures)])
        conn.execute(insert(CapturePart), [{"capture_id": c + 1, "role": "manifest",
                                            "name": "manifest.json", "size": 1,
                                            "sha256": hashlib.sha256(str(c).encode()).hexdigest()}
                                           for c in range(captures)])
        conn.execute(insert(LoggedCapture), [{"log_index": c, "capture_id": c + 1, "entry": "{}",
                                              "published": True, "logged_at": now}
                                             for c in range(captures)])
        for start in range(0, FRAGMENTS, 10_000):
            span = range(start, min(start + 10_000, FRAGMENTS))
            ids = {i: hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in span}
            stamp = {i: now - timedelta(minutes=FRAGMENTS - i) for i in span}  # one a minute
            conn.execute(insert(Fragment), [{
                "id": ids[i], "capture_id": i // PER_CAPTURE + 1, "position": i,
                "status": APPROVED, "text": _text(i),
                "source_url": f"https://news.example/{i // PER_CAPTURE}", "sha256": "a" * 64,
                "fetched_at": now, "created_at": now, "reviewed_by": "arch",
                "reviewed_at": stamp[i]} for i in span])
            conn.execute(insert(LoggedDecisionRow), [{
                "log_index": captures + i, "fragment_id": ids[i], "decision": "approved",
                "text_sha256": text_sha256(_text(i)), "reviewed_at": stamp[i], "entry": "{}",
                "published": True, "logged_at": now} for i in span])
    engine.dispose()


def _median_ms(action, rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(url: str, log_path: Path) -> dict[str, float]:
    """Median ms of: the pass now, the full comparison, SELECT 1; rows found after one approval."""
    engine = create_engine(url)
    settings = Settings(data_dir=log_path.parent, database_url=url)

    def decision_pass(forget: bool):
        def run():
            if forget:
                decisions._seen.clear()
            with Session(engine) as session:
                assert new_decision_rows(session, settings, 10**9, 10_000) == []
                session.commit()
        return run

    def select_one():
        with Session(engine) as session:
            session.execute(text("SELECT 1")).one()
            session.commit()

    decision_pass(True)()  # warm caches, and a first full pass to remember
    out = {"idle": _median_ms(decision_pass(False)), "full": _median_ms(decision_pass(True), 3),
           "select1": _median_ms(select_one)}
    print(f"  {url.split(':')[0]}: {out}", file=sys.stderr, flush=True)
    decision_pass(True)()
    with Session(engine) as session:  # one re-review of an approved fragment, edited text
        one = session.scalar(select(Fragment.id).order_by(Fragment.id).limit(1))
        session.execute(update(Fragment).where(Fragment.id == one).values(
            text="Edited.", reviewed_at=datetime.now(timezone.utc)))
        session.commit()
    with Session(engine) as session:
        start = time.perf_counter()
        rows = new_decision_rows(session, settings, 10**9, 10_000)
        out["after_one_ms"] = (time.perf_counter() - start) * 1000
        out["after_one_rows"] = len(rows)
        session.rollback()
    engine.dispose()
    return out


def run() -> str:
    """Both databases; a Markdown table."""
    from tests.services import create_postgres_database, drop_postgres_database

    lines = [f"Idle decision pass at {FRAGMENTS:,} approved, logged fragments (median of "
             f"{ROUNDS}, ms)", "",
             "| database | idle pass now | full comparison (before) | SELECT 1 | now / before "
             "| after one re-review: rows, ms |", "| --- | --- | --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("sqlite", "postgresql"):
            url = (f"sqlite:///{Path(tmp) / 'bench.db'}" if name == "sqlite"
                   else create_postgres_database("samizdat_bench"))
            try:
                migrate.upgrade(url)
                start = time.perf_counter()
                fill(url)
                if name == "postgresql":  # what autovacuum does after bulk inserts: the
                    # visibility map lets the status count read the index alone
                    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
                        conn.execute(text("VACUUM ANALYZE"))
                print(f"  {name}: filled in {time.perf_counter() - start:.0f} s", file=sys.stderr,
                      flush=True)
                r = measure(url, Path(tmp) / name / "log")
            finally:
                if name == "postgresql":
                    drop_postgres_database(url)
            lines.append(f"| {name} | {r['idle']:.1f} | {r['full']:.1f} | {r['select1']:.2f} "
                         f"| {r['idle'] / r['full']:.3f} | {r['after_one_rows']}, "
                         f"{r['after_one_ms']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
