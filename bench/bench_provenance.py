"""Provenance benchmark: appending 1,000,000 entries to the tiled log, and what one checkpoint costs.

Peer in the same run: plain hashlib SHA-256 over the same entry bytes (one digest per entry, the
least any hash log must do), so the ratio shows what tiles, bundles and files add. Also measured:
publishing one checkpoint at 1,000,000 entries (partial tiles + root + Ed25519 signature), the
files written, and proof sizes at that size.

Run: `.venv/bin/python -m bench bench_provenance`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

ENTRIES = 1_000_000
BATCH = 10_000  # what the scheduler would append between checkpoints, at most


def _entry(i: int) -> bytes:
    """A capture-sized log entry (~150 bytes of JSON)."""
    return (f'{{"kind":"capture","url":"https://news.example/{i}","time":"2026-12-07T00:00:00Z",'
            f'"manifest":"{i:064x}"}}').encode()


def run() -> str:
    """Measure and return a Markdown section for docs/benchmarks.md."""
    from provenance import merkle
    from provenance.log import LogClient, LogWriter
    from provenance.note import Ed25519Signer
    from provenance.tiles import TileReader

    entries = [_entry(i) for i in range(ENTRIES)]
    started = time.perf_counter()
    for entry in entries:
        hashlib.sha256(entry).digest()
    peer = ENTRIES / (time.perf_counter() - started)

    directory = Path(tempfile.mkdtemp(prefix="bench-provenance-"))
    signer = Ed25519Signer.generate("bench.example/log")
    try:
        with LogWriter(directory, signer) as writer:
            started = time.perf_counter()
            for start in range(0, ENTRIES, BATCH):
                writer.append(entries[start:start + BATCH])
            rate = ENTRIES / (time.perf_counter() - started)
            started = time.perf_counter()
            writer.publish()
            publish_ms = (time.perf_counter() - started) * 1000
        files = sum(1 for p in directory.rglob("*") if p.is_file())
        size_mb = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6
        client = LogClient(str(directory), signer.name, signer.verifier)
        checkpoint = client.checkpoint()
        started = time.perf_counter()
        inclusion = client.prove_inclusion(checkpoint, ENTRIES // 3)
        prove_ms = (time.perf_counter() - started) * 1000
        half = merkle.consistency_proof(TileReader(client.fetcher, checkpoint.size), ENTRIES // 2, ENTRIES)
    finally:
        shutil.rmtree(directory)
    return (
        "## Provenance: appending to the tiled log\n\n"
        f"`.venv/bin/python -m bench bench_provenance`: {ENTRIES:,} entries of ~{len(entries[0])} bytes, "
        f"appended in batches of {BATCH:,} to a log directory (tmpfs or disk as `tempfile` gives).\n\n"
        "| | entries/s |\n| --- | --- |\n"
        f"| `LogWriter.append` (leaf hash, tiles, bundles, files) | {rate:,.0f} |\n"
        f"| peer: `hashlib.sha256(entry)` alone | {peer:,.0f} |\n\n"
        f"Ratio log/peer: **{rate / peer:.3f}**. Publishing one checkpoint at {ENTRIES:,} entries "
        f"(partial tiles, root, Ed25519 signature): **{publish_ms:.1f} ms**. The log is {files:,} "
        f"files, {size_mb:.1f} MB. At that size an inclusion proof is {len(inclusion.proof)} hashes "
        f"({len(inclusion.proof) * 32} bytes, proven from a cold directory in {prove_ms:.1f} ms) and a "
        f"consistency proof from half the size {len(half)} hashes ({len(half) * 32} bytes).\n"
    )
