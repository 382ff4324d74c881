"""Verifier benchmark: `python -m provenance.verify` on one capture folder and on a WACZ of 20
captures, as a reader runs it (a fresh interpreter each time), median of 5.

The log holds 10,000 capture entries before the benchmark's own, on disk, so the folder's entry
is found by scanning bundles as in real use; the WACZ is written by archive.wacz.write_wacz with
its log proofs and checked offline against its pinned key. Peer in the same run: a fresh
interpreter that only reads and sha256-hashes the same files (the least any verifier does).

Run: `.venv/bin/python -m bench bench_verify` (SAMIZDAT_BENCH_VERIFY_FILLERS=1000000 for a log of a
million entries: the folder's time grows with the log, a WACZ's does not).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILLERS = int(os.environ.get("SAMIZDAT_BENCH_VERIFY_FILLERS", "10000"))
CAPTURES = 20
PAGE_BYTES = 200_000  # a news page's HTML, about
RUNS = 5


def _page(i: int) -> bytes:
    words = " ".join(f"word{(i * 7919 + n) % 50_000}" for n in range(PAGE_BYTES // 10))
    return f"<html><body><p>{words}</p></body></html>".encode()[:PAGE_BYTES]


def _median_seconds(args: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return statistics.median(times)


def run() -> str:
    """Measure and return a Markdown section for docs/benchmarks.md."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from archive.wacz import ExportedCapture, WaczSelection, write_wacz
    from archive.wacz_signing import CURVE, WaczSigner
    from mirror.storage.local import LocalStore
    from mirror.warc import build_document_warc
    from provenance.appender import publish_verifier_key
    from provenance.entries import CaptureFacts, PartRef, capture_entry
    from provenance.log import LogWriter
    from provenance.note import Ed25519Signer

    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        store = LocalStore(tmp / "store")
        signer = Ed25519Signer.generate("bench.example/log")
        start = datetime(2026, 12, 1, tzinfo=UTC)
        entries, captures = [], []
        for i in range(FILLERS):
            sha = hashlib.sha256(str(i).encode()).hexdigest()
            facts = CaptureFacts(f"https://news.example/{i}", start,
                                 (PartRef("capture.warc.gz", sha),))
            entries.append(capture_entry(facts, sha).encode())
        # The folder: a page and its WARC, with the manifest the reader downloads.
        folder = tmp / "folder"
        folder.mkdir()
        when = start + timedelta(days=1)
        html = _page(0)
        warc = build_document_warc("https://news.example/page", html, "text/html", when)
        (folder / "index.html").write_bytes(html)
        (folder / "capture.warc.gz").write_bytes(warc)
        parts = [{"name": name, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                  "cid": None} for name in ("capture.warc.gz", "index.html")]
        manifest = json.dumps({"samizdat_manifest": 2, "url": "https://news.example/page",
                               "fetched_at": when.isoformat(), "parts": parts}).encode()
        (folder / "manifest.json").write_bytes(manifest)
        facts = CaptureFacts("https://news.example/page", when,
                             tuple(PartRef(p["name"], p["sha256"]) for p in parts))
        entries.append(capture_entry(facts, hashlib.sha256(manifest).hexdigest()).encode())
        # The WACZ's captures, logged after it.
        for i in range(CAPTURES):
            url, when = f"https://news.example/wacz/{i}", start + timedelta(hours=i)
            blob = store.put(build_document_warc(url, _page(i + 1), "text/html", when))
            facts = CaptureFacts(url, when, (PartRef("capture.warc.gz", blob.locator),))
            captures.append(ExportedCapture(i + 1, url, when, f"page {i}", blob.locator, blob.size,
                                            len(entries)))
            entries.append(capture_entry(facts, blob.locator).encode())
        log_dir = tmp / "log"
        with LogWriter(log_dir, signer) as writer:
            writer.append(entries)
            writer.publish()
        publish_verifier_key(log_dir, signer.verifier.vkey)
        wacz_signer = WaczSigner(ec.generate_private_key(CURVE()))
        (tmp / "wacz-key.json").write_text(json.dumps(wacz_signer.public_document()))
        wacz = tmp / "twenty.wacz"
        selection = WaczSelection("bench", "twenty captures", "twenty.wacz", captures)
        with open(wacz, "wb") as fh:
            write_wacz(store, selection, fh, signer=wacz_signer, log_path=log_dir)

        verify = [sys.executable, "-m", "provenance.verify"]
        vkey = signer.verifier.vkey
        folder_s = _median_seconds([*verify, str(folder), "--log", str(log_dir), "--key", vkey,
                                    "--no-state"])
        wacz_s = _median_seconds([*verify, str(wacz), "--key", vkey, "--wacz-key",
                                  str(tmp / "wacz-key.json"), "--no-state"])
        hash_files = ("import hashlib, sys\nfor p in sys.argv[1:]:\n"
                      "    hashlib.sha256(open(p, 'rb').read()).digest()\n")
        folder_files = [str(p) for p in sorted(folder.iterdir())]
        peer_folder = _median_seconds([sys.executable, "-c", hash_files, *folder_files])
        peer_wacz = _median_seconds([sys.executable, "-c", hash_files, str(wacz)])
        wacz_mb = os.path.getsize(wacz) / 1e6
    finally:
        shutil.rmtree(tmp)
    return (
        "## Provenance: the verifier\n\n"
        f"`.venv/bin/python -m bench bench_verify`: `python -m provenance.verify` in a fresh "
        f"interpreter, median of {RUNS}, log on disk holding {FILLERS:,} other capture entries; "
        "peer: a fresh interpreter that only sha256-hashes the same files.\n\n"
        "| input | verifier | peer (hash only) | ratio |\n| --- | --- | --- | --- |\n"
        f"| one capture folder (page + WARC; entry found by scanning {len(entries):,} entries) | "
        f"{folder_s * 1000:.0f} ms | {peer_folder * 1000:.0f} ms | {folder_s / peer_folder:.1f} |\n"
        f"| a WACZ of {CAPTURES} captures ({wacz_mb:.1f} MB; hashes, signature, {CAPTURES} "
        f"inclusion proofs, offline) | {wacz_s * 1000:.0f} ms | {peer_wacz * 1000:.0f} ms | "
        f"{wacz_s / peer_wacz:.1f} |\n"
    )
