"""The project's Ed25519 signing key for fragment packs: made on first use, kept outside the web root.

Packs travel through hosts Samizdat does not control (S3, IPFS gateways, supporters' own sites),
so embed.js trusts a pack only when its index carries a valid signature by this key. The private
half never leaves ``SAMIZDAT_EMBED_SIGNING_KEY`` (mode 0600); the public half is published beside
the packs and built into embed.js.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from samizdat.errors import SamizdatError
from samizdat.keyfile import load_or_create_ed25519_key


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding JWK and embed.js use for keys and signatures."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Decode unpadded base64url; SamizdatError for anything that is not."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise SamizdatError(f"not base64url: {text[:20]!r}") from exc


@dataclass(frozen=True)
class PackSigner:
    """An Ed25519 private key with the identifiers published alongside its signatures."""

    private_key: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key(self) -> str:
        """The public key as unpadded base64url (the JWK ``x`` of an OKP/Ed25519 key)."""
        return b64url(self.public_raw)

    @property
    def key_id(self) -> str:
        """A short, stable name for the key: the first 16 hex digits of its sha256."""
        return hashlib.sha256(self.public_raw).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        """The Ed25519 signature of ``data``, unpadded base64url."""
        return b64url(self.private_key.sign(data))

    def public_jwk(self) -> dict:
        """The public key as a JWK, the form WebCrypto's importKey("jwk", …) takes."""
        return {"kty": "OKP", "crv": "Ed25519", "x": self.public_key, "kid": self.key_id}


def verify(public_key: str, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64url) is ``public_key``'s signature of ``data``."""
    try:
        key = Ed25519PublicKey.from_public_bytes(from_b64url(public_key))
        key.verify(from_b64url(signature), data)
    except (InvalidSignature, ValueError, SamizdatError):
        return False
    return True


def load_or_create_signer(path: Path) -> PackSigner:
    """The key stored at ``path`` (PEM, PKCS#8), made there first (mode 0600) if there is none."""
    return PackSigner(load_or_create_ed25519_key(path, "pack signing key"))


def load_retired_signer(path: Path) -> PackSigner:
    """A retired key that still co-signs during a rotation; it must exist (never generated)."""
    if not path.exists():
        raise SamizdatError(f"retired pack signing key {path} does not exist")
    return load_or_create_signer(path)
