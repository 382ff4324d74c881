"""Anonymous WACZ signatures (WACZ Signing and Verification 0.1.0): the project's WACZ key.

A signed WACZ's ``datapackage-digest.json`` carries ``signedData``: the sha256 of
``datapackage.json`` signed with ECDSA over SHA-256, and the public key that checks it. The
curve and encodings are the ones ReplayWeb.page (wabac.js) verifies with WebCrypto: P-384, the
public key as base64 SPKI DER, the signature as base64 raw r||s over the hash string. The
private half never leaves ``SAMIZDAT_WACZ_SIGNING_KEY`` (mode 0600); the public half is in every
WACZ and at ``/archive/wacz-key.json``, where a reader checks that a WACZ's key is Samizdat's.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# The check lives beside the standalone verifier, which may import nothing of the app.
from provenance.wacz_signature import CURVE, verify_signed_data  # noqa: F401 — re-exported
from provenance.wacz_signature import RAW_HALF as _HALF
from samizdat.errors import SamizdatError
from samizdat.keyfile import load_or_create_private_key
SIGNATURE_VERSION = "0.1.0"


@dataclass(frozen=True)
class WaczSigner:
    """An ECDSA P-384 private key that signs WACZ packages in the spec's anonymous mode."""

    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> str:
        """The public key as base64 SPKI DER, the spec's ``publicKey``."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    @property
    def key_id(self) -> str:
        """A short, stable name for the key: the first 16 hex digits of the sha256 of its SPKI."""
        return hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()[:16]

    def signed_data(self, digest: str, created: str, software: str) -> dict:
        """The spec's anonymous ``signedData`` for ``digest`` ("sha256:…" of datapackage.json)."""
        r, s = decode_dss_signature(
            self.private_key.sign(digest.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        )
        raw = r.to_bytes(_HALF, "big") + s.to_bytes(_HALF, "big")
        return {
            "hash": digest,
            "created": created,
            "software": software,
            "version": SIGNATURE_VERSION,
            "signature": base64.b64encode(raw).decode("ascii"),
            "publicKey": self.public_key,
        }

    def public_document(self) -> dict:
        """What ``/archive/wacz-key.json`` publishes: the key, its id and how it signs."""
        return {
            "publicKey": self.public_key,
            "keyId": self.key_id,
            "algorithm": "ECDSA P-384 SHA-256, raw r||s signature of the datapackage.json hash",
        }


def load_wacz_signer(path: Path) -> WaczSigner:
    """The WACZ key stored at ``path`` (PEM, PKCS#8), made there (mode 0600) if there is none."""
    key = load_or_create_private_key(
        path, lambda: ec.generate_private_key(CURVE()), "WACZ signing key"
    )
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, CURVE):
        raise SamizdatError(f"the WACZ signing key at {path} is not an ECDSA P-384 key")
    return WaczSigner(key)
