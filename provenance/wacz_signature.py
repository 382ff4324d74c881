"""Checking an anonymous WACZ signature (WACZ Signing and Verification 0.1.0), app-free.

Kept here, not in archive/, so the standalone verifier checks a WACZ's ``signedData`` with only
``cryptography``; archive/wacz_signing.py signs with the same curve and encodings.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

CURVE = ec.SECP384R1
# Bytes of r and of s in a raw (IEEE P1363) P-384 signature, the form WebCrypto signs and checks.
RAW_HALF = 48


def verify_signed_data(signed: dict, public_key: str | None = None) -> bool:
    """Whether ``signed`` is a valid anonymous signature (by ``public_key`` when given, else by
    the key it names). Malformed data is simply not valid."""
    try:
        claimed = signed["publicKey"]
        if public_key is not None and claimed != public_key:
            return False
        key = serialization.load_der_public_key(base64.b64decode(claimed, validate=True))
        raw = base64.b64decode(signed["signature"], validate=True)
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, CURVE):
            return False
        if len(raw) != 2 * RAW_HALF:
            return False
        der = encode_dss_signature(
            int.from_bytes(raw[:RAW_HALF], "big"), int.from_bytes(raw[RAW_HALF:], "big")
        )
        key.verify(der, signed["hash"].encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error, AttributeError):
        return False
    return True
