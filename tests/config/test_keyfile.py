"""Key files are made once, whole: processes starting together all read the one key."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

# Each process waits at a barrier file, then makes-or-reads the key and prints its public bytes.
_RACER = """
import sys, time
from pathlib import Path
from samizdat.keyfile import load_or_create_ed25519_key
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
key = load_or_create_ed25519_key(Path(sys.argv[1]), "log signing key")
print(key.public_key().public_bytes_raw().hex())
"""


def test_processes_starting_together_all_read_the_one_whole_key(tmp_path):
    # Before, the file was created empty (O_EXCL) and then written: a second process could read
    # it in between and fail ("MalformedFraming"), as the walk-through's scheduler once did.
    root = Path(__file__).resolve().parents[2]
    for round_ in range(3):
        path, go = tmp_path / f"r{round_}" / "keys" / "log-ed25519.pem", tmp_path / f"go{round_}"
        racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(path), str(go)], cwd=root,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                  for _ in range(8)]
        go.touch()
        outputs = [racer.communicate(timeout=120) for racer in racers]
        assert all(racer.returncode == 0 for racer in racers), [err.decode() for _, err in outputs]
        assert len({out.strip() for out, _ in outputs}) == 1  # one key, whoever made it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
