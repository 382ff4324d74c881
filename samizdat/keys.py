"""Ed25519 private keys kept in files: made on first use (mode 0600), read as PEM (PKCS#8).

Shared by every capability that signs (the embed's packs, the provenance log), so a key file is
created and checked in one way only.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from samizdat.errors import SamizdatError


def load_or_create_ed25519_key(path: Path, what: str) -> Ed25519PrivateKey:
    """The key stored at ``path``, generated there first if there is none; ``what`` names it in
    errors ("the pack signing key").

    A new key file is created with O_EXCL and mode 0600, so two processes starting at once
    cannot both write one, and no other user of the host can read it.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SamizdatError(f"cannot read {what} at {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SamizdatError(f"{what} at {path} is not an Ed25519 key")
    return key
