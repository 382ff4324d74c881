"""Private key files: made on first use with mode 0600, read as PEM (PKCS#8) afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from samizdat.atomicfile import create_exclusive
from samizdat.errors import SamizdatError


def load_or_create_private_key(
    path: Path, generate: Callable[[], PrivateKeyTypes], what: str
) -> PrivateKeyTypes:
    """The private key stored at ``path``, made there by ``generate`` first if there is none.

    A new key file appears whole, with mode 0600 (see :func:`write_private_key`), so two
    processes starting at once cannot both write one, and no other user of the host can read it. ``what`` names the key in
    the SamizdatError raised when the file cannot be read.
    """
    if not path.exists():
        write_private_key(path, generate())  # False: another process made it first; use theirs
    return load_private_key(path, what)


def load_private_key(path: Path, what: str) -> PrivateKeyTypes:
    """The private key stored at ``path``; SamizdatError naming ``what`` if it cannot be read."""
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SamizdatError(f"cannot read the {what} at {path}: {exc}") from exc


def write_private_key(path: Path, key: PrivateKeyTypes) -> bool:
    """Write ``key`` as PEM (PKCS#8) to a new file ``path`` (mode 0600, synced to disk); False,
    writing nothing, if the file already exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Linked into place once whole, so two processes starting at once cannot both make one and
    # neither reads the other's half-written file (the walk-through's scheduler and web worker
    # once did, when the key was written in place).
    return create_exclusive(path, pem, mode=0o600, sync=True)


def load_or_create_ed25519_key(path: Path, what: str) -> Ed25519PrivateKey:
    """The Ed25519 key at ``path`` (made there first if there is none); ``what`` names it in errors."""
    key = load_or_create_private_key(path, Ed25519PrivateKey.generate, what)
    if not isinstance(key, Ed25519PrivateKey):
        raise SamizdatError(f"the {what} at {path} is not an Ed25519 key")
    return key
