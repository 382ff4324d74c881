"""A second Samizdat instance as a witness: gunicorn (two workers) of this app on its own loopback
port, with its own data directory, witnessing the logs its ``witnessed-logs`` file lists."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings
from samizdat import migrate
from tests.services import ROOT, free_port, stop_process, wait_for_http
from witness.service import witness_signer

WITNESS_NAME = "witness.test/witness"


@dataclass
class WitnessServer:
    """The running witness: its submission prefix, its key and the file of logs it witnesses."""

    proc: subprocess.Popen
    url: str  # the submission prefix: POST <url>/add-checkpoint
    vkey: str
    logs_file: Path
    data_dir: Path
    log_file: Path

    def close(self) -> None:
        """Stop the server (its whole process group)."""
        stop_process(self.proc)


def start_witness_server(directory: Path, workers: int = 2) -> WitnessServer:
    """Start the witness and wait until it answers; ServiceError if it does not."""
    data_dir = directory / "data"
    data_dir.mkdir(parents=True)
    url = f"sqlite:///{data_dir / 'samizdat.db'}"
    migrate.upgrade(url)
    logs_file = directory / "witnessed-logs"
    logs_file.write_text("# <origin> <log vkey>, one per line\n", encoding="utf-8")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SAMIZDAT_")},
        "SAMIZDAT_DATA_DIR": str(data_dir), "SAMIZDAT_DATABASE_URL": url,
        "SAMIZDAT_BIND": f"127.0.0.1:{port}", "SAMIZDAT_WEB_WORKERS": str(workers),
        "SAMIZDAT_WITNESSED_LOGS": str(logs_file), "SAMIZDAT_WITNESS_NAME": WITNESS_NAME,
    }
    log_file = directory / "gunicorn.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
    except BaseException:
        stop_process(proc)
        raise
    # The key file the server made on start, read the way `flask witness key` reads it.
    settings = Settings(data_dir=data_dir, witness_name=WITNESS_NAME)
    vkey = witness_signer(settings).verifier.vkey
    return WitnessServer(proc, f"http://127.0.0.1:{port}/witness", vkey, logs_file, data_dir,
                         log_file)
