"""Witness benchmark: one cosigning round trip on loopback, log to a second Samizdat as witness.

The witness is this app under gunicorn (two workers, its own data directory, the same process the
tests start: tests/witness/server.py). Each round trip is what the log's pass does per witness:
read the tiles for a consistency proof, POST add-checkpoint, the witness verifies the log's
signature and the proof, cosigns and stores its state (fsync), and the log verifies the returned
cosignature and rewrites its checkpoint. Peer in the same run: a plain GET /healthz of the same
server (the HTTP floor). Median of 20 each.

Run: `.venv/bin/python -m bench bench_witness`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

ROUNDS = 20


def run() -> str:
    """Measure and return a Markdown section for docs/benchmarks.md."""
    from provenance.log import LogWriter
    from provenance.note import Ed25519Signer
    from provenance.witnessing import WitnessEndpoint, witness_checkpoint_in
    from tests.witness.server import start_witness_server
    from witness.logs import add_log

    directory = Path(tempfile.mkdtemp(prefix="bench-witness-"))
    server = start_witness_server(directory / "witness")
    try:
        signer = Ed25519Signer.generate("bench.example/log")
        add_log(server.logs_file, signer.name, signer.verifier.vkey)
        endpoint = WitnessEndpoint.parse(server.vkey, server.url)
        health = server.url.removesuffix("/witness") + "/healthz"
        cosign, floor = [], []
        with LogWriter(directory / "log", signer) as writer:
            writer.append(f"warm-up {i}".encode() for i in range(1000))
            writer.publish()
            witness_checkpoint_in(writer.directory, signer.name, signer.verifier, [endpoint], 1)
            for i in range(ROUNDS):
                writer.append(f"entry {i}.{j}".encode() for j in range(100))
                writer.publish()
                started = time.perf_counter()
                report = witness_checkpoint_in(writer.directory, signer.name, signer.verifier,
                                               [endpoint], 1)
                cosign.append((time.perf_counter() - started) * 1000)
                assert report.cosigned == [endpoint.label], report.failures
                started = time.perf_counter()
                with urllib.request.urlopen(health, timeout=30) as response:
                    response.read()
                floor.append((time.perf_counter() - started) * 1000)
    finally:
        server.close()
    median, peer = statistics.median(cosign), statistics.median(floor)
    return (
        "## Provenance: a witness's cosigning round trip\n\n"
        f"| median of {ROUNDS} on loopback | ms |\n| --- | --- |\n"
        f"| log → witness → log (proof, add-checkpoint, cosign, fsync, verify, rewrite) | "
        f"{median:.1f} |\n"
        f"| peer: GET /healthz of the same server | {peer:.1f} |\n\n"
        f"Ratio: **{median / peer:.1f}×** the HTTP floor (min {min(cosign):.1f} ms, "
        f"max {max(cosign):.1f} ms).\n"
    )
