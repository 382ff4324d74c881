"""Checking WACZ signatures (WACZ Signing and Verification 0.1.0), app-free: anonymous mode
(a bare public key) and the parts of domain mode (a certificate chain) that need no network.

Kept here, not in archive/, so the standalone verifier checks a WACZ's ``signedData`` with only
``cryptography``; archive/wacz_signing.py signs with the same curves and encodings.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone

from cryptography import x509
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


# --- domain mode ---------------------------------------------------------------------------------
# A domain-mode signedData (WACZ Signing and Verification 0.1.0, as webrecorder's authsign makes
# and checks it): the hash signed (base64 DER ECDSA over SHA-256) by the key of ``domainCert``'s
# leaf, a PEM chain leaf first whose last certificate is the root a verifier trusts by its sha-256
# fingerprint; ``domain`` is the leaf's subject; ``timeSignature`` is a base64 RFC 3161
# TimeStampResp over the signature string, by the TSA whose chain is ``timestampCert``.

# authsign's rules: a signature is made within this long after its certificate's notBefore (it
# renews short-lived certificates and signs only with a fresh one) and time-stamped within
# STAMP_WINDOW after ``created``.
CERT_WINDOW = timedelta(days=7)
STAMP_WINDOW = timedelta(minutes=10)
DOMAIN_FIELDS = ("hash", "created", "signature", "domain", "domainCert", "timeSignature",
                 "timestampCert")
MAX_CHAIN = 8


def is_domain_mode(signed: object) -> bool:
    """Whether ``signed`` is a domain-mode signedData (it names a domain certificate)."""
    return isinstance(signed, dict) and "domainCert" in signed


def parse_chain(pem: str | bytes) -> list[x509.Certificate]:
    """The certificates of a PEM chain, in order; ValueError if there is none or too many."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    certs = x509.load_pem_x509_certificates(data)
    if not certs or len(certs) > MAX_CHAIN:
        raise ValueError(f"a chain holds 1 to {MAX_CHAIN} certificates, this one {len(certs)}")
    return certs


def chain_breaks(certs: list[x509.Certificate]) -> str | None:
    """Why ``certs`` (leaf first) is not a chain, each certificate signed by the next; None if it
    is."""
    for position, (cert, issuer) in enumerate(zip(certs, certs[1:]), start=1):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            return (f"certificate {position} ({cert.subject.rfc4514_string()}) is not signed by "
                    f"certificate {position + 1} ({issuer.subject.rfc4514_string()}): "
                    f"{exc or type(exc).__name__}")
    return None


def fingerprint(cert: x509.Certificate) -> str:
    """A certificate's sha-256 fingerprint in lower-case hex, as authsign's trusted roots list it."""
    return cert.fingerprint(hashes.SHA256()).hex()


def subject_name(cert: x509.Certificate) -> str:
    """The name a domain certificate vouches for, as authsign reads it: the CN, else the first
    DNS name."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if names:
        value = names[0].value
        return value.decode("utf-8") if isinstance(value, bytes) else value
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    dns = san.get_values_for_type(x509.DNSName)
    return dns[0] if dns else ""


def verify_hash_signature(signed: dict, cert: x509.Certificate) -> bool:
    """Whether ``signed["signature"]`` (base64 DER ECDSA) signs ``signed["hash"]`` with the key of
    ``cert``."""
    try:
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        der = base64.b64decode(signed["signature"], validate=True)
        key.verify(der, signed["hash"].encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error, AttributeError):
        return False
    return True


def parse_created(text: object) -> datetime | None:
    """``created`` as an aware UTC datetime (RFC 3339, ``Z`` or an offset); None if it is not."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
