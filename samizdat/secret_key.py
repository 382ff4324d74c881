"""The Flask secret key: from settings, or generated once and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from config.settings import Settings
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
        tmp = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another worker won the race; use its key
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    if not key:
        raise SamizdatError(f"{path} is empty; delete it or set SAMIZDAT_SECRET_KEY")
    return key
