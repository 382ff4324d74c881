"""The Flask secret key: from settings, or generated once and kept in the data directory."""

from __future__ import annotations

import secrets
from pathlib import Path

from config.settings import Settings
from samizdat.atomicfile import create_exclusive
from samizdat.errors import SamizdatError

SECRET_KEY_FILE = "secret_key"


def load_secret_key(settings: Settings) -> str:
    """``settings.secret_key`` if set, else the key in ``data_dir/secret_key`` (created 0600 once).

    Every gunicorn worker builds its own app, so the generated key must live in a file they all
    read; creating it by hard-linking a finished temporary file means no worker ever reads a
    half-written key, and the first worker to link wins.
    """
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # False when another worker won the race: its key is the one read below.
        create_exclusive(path, secrets.token_hex(32).encode(), mode=0o600)
    key = path.read_text().strip()
    if not key:
        raise SamizdatError(f"{path} is empty; delete it or set SAMIZDAT_SECRET_KEY")
    return key
