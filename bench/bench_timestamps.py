"""Time-stamp benchmark: what one RFC 3161 token of a checkpoint costs from a TSA on loopback.

The TSA is the tests' own (tests/provenance/tsa.py: OpenSSL's ``ts -reply`` behind HTTP, a fresh
root and TSA certificate). Measured: the median of 20 ``request_timestamps`` calls over a real
checkpoint's body text (query, HTTP round trip, OpenSSL signing, parsing and verifying the reply)
and the token's size in bytes. Peer in the same run: the bare ``openssl ts -reply`` on the same
query (no HTTP, no verification), so the difference is what the client and transport add.

Run: `.venv/bin/python -m bench bench_timestamps`.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROUNDS = 20


def run() -> str:
    """Measure and return a Markdown section for docs/benchmarks.md."""
    from provenance.log import LogWriter
    from provenance.note import Ed25519Signer
    from provenance.timestamp import request_timestamps
    from tests.provenance.tsa import OpenSSLTSA

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with LogWriter(base / "log", Ed25519Signer.generate("bench.example/log")) as writer:
            writer.append(f'{{"n": {i}}}'.encode() for i in range(1000))
            writer.publish()
            body = writer.checkpoint.text().encode()
        tsa = OpenSSLTSA(base / "tsa", "Bench TSA")
        try:
            times, sizes = [], set()
            for _ in range(ROUNDS):
                started = time.perf_counter()
                results = request_timestamps(body, [tsa.url], [tsa.root])
                times.append(time.perf_counter() - started)
                if results.failures:
                    raise RuntimeError(f"the loopback TSA failed: {results.failures[0].reason}")
                sizes.add(len(results.timestamps[0].token))
            (base / "body").write_bytes(body)
            query = subprocess.run([tsa.openssl, "ts", "-query", "-data", str(base / "body"),
                                    "-sha256", "-cert"], capture_output=True, check=True).stdout
            bare = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                tsa.reply(query)
                bare.append(time.perf_counter() - started)
        finally:
            tsa.close()
    median, peer = statistics.median(times), statistics.median(bare)
    return (
        "## Time-stamps (RFC 3161, loopback TSA)\n\n"
        f"| what | median of {ROUNDS} |\n| --- | --- |\n"
        f"| one token over a checkpoint's body: request, HTTP, OpenSSL signs, verify | "
        f"{median * 1000:.1f} ms |\n"
        f"| peer: bare `openssl ts -reply` on the same query | {peer * 1000:.1f} ms |\n"
        f"| token (DER TimeStampResp, signer certificate embedded) | "
        f"{', '.join(str(s) for s in sorted(sizes))} bytes |\n"
    )
