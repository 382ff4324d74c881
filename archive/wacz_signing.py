"""WACZ signatures (WACZ Signing and Verification 0.1.0): anonymous mode with the project's WACZ
key, and domain mode with the operator's domain certificate when one is configured.

A signed WACZ's ``datapackage-digest.json`` carries ``signedData``: the sha256 of
``datapackage.json`` signed with ECDSA over SHA-256, and the public key that checks it. The
curve and encodings are the ones ReplayWeb.page (wabac.js) verifies with WebCrypto: P-384, the
public key as base64 SPKI DER, the signature as base64 raw r||s over the hash string. The
private half never leaves ``SAMIZDAT_WACZ_SIGNING_KEY`` (mode 0600); the public half is in every
WACZ and at ``/archive/wacz-key.json``, where a reader checks that a WACZ's key is Samizdat's.

Domain mode (``SAMIZDAT_WACZ_DOMAIN_CERT`` and ``SAMIZDAT_WACZ_DOMAIN_KEY``) signs the same hash
with the key of a domain certificate and adds an RFC 3161 token over that signature from one of
``SAMIZDAT_TSA_URLS``, the form ``wacz validate --verify-auth`` (webrecorder's authsign) accepts.
A domain signer falls back to the anonymous signature, logged, when its certificate is past
authsign's window or no TSA answers: an export is never refused for want of a time-stamp.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# The check lives beside the standalone verifier, which may import nothing of the app.
from provenance.wacz_signature import CURVE, verify_signed_data  # noqa: F401 — re-exported
from provenance.wacz_signature import (
    CERT_WINDOW,
    chain_breaks,
    parse_chain,
    subject_name,
)
from provenance.wacz_signature import RAW_HALF as _HALF
from samizdat.errors import SamizdatError
from samizdat.keyfile import load_or_create_private_key

SIGNATURE_VERSION = "0.1.0"
# A chain and its key are a few kilobytes; a file far larger is not one.
MAX_PEM_BYTES = 256 * 1024

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class DomainIdentity:
    """The operator's domain certificate chain (leaf first) and the leaf's private key."""

    chain: tuple[x509.Certificate, ...]
    private_key: ec.EllipticCurvePrivateKey

    @property
    def leaf(self) -> x509.Certificate:
        """The certificate whose key signs."""
        return self.chain[0]

    @property
    def domain(self) -> str:
        """The name the leaf vouches for, the signature's ``domain``."""
        return subject_name(self.leaf)

    @property
    def chain_pem(self) -> str:
        """The chain as PEM, leaf first: the signature's ``domainCert``."""
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                       for c in self.chain)

    def usable_until(self) -> datetime:
        """The last moment a signature made with it is accepted by authsign: ``CERT_WINDOW``
        after the leaf's notBefore, or its notAfter if sooner."""
        return min(self.leaf.not_valid_before_utc + CERT_WINDOW, self.leaf.not_valid_after_utc)

    def fresh(self, now: datetime) -> bool:
        """Whether a signature made at ``now`` is within the leaf's validity and authsign's
        window after its notBefore."""
        return self.leaf.not_valid_before_utc <= now <= self.usable_until()


def _read_pem(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise SamizdatError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_PEM_BYTES:
        raise SamizdatError(f"the {what} {path} is larger than {MAX_PEM_BYTES} bytes")
    return data


def load_domain_identity(cert_path: Path, key_path: Path) -> DomainIdentity:
    """The chain at ``cert_path`` (PEM, leaf first, ending with the root verifiers trust) and the
    unencrypted PEM key at ``key_path``; SamizdatError in one line unless the chain parses, each
    certificate is signed by the next, the leaf names a domain and the key is the leaf's (ECDSA,
    as authsign verifies)."""
    try:
        chain = parse_chain(_read_pem(cert_path, "WACZ domain certificate"))
    except ValueError as exc:
        raise SamizdatError(f"the WACZ domain certificate {cert_path} is not a PEM chain: {exc}"
                            ) from None
    broken = chain_breaks(chain)
    if broken:
        raise SamizdatError(f"the WACZ domain certificate {cert_path} is not a chain: {broken}")
    try:
        key = serialization.load_pem_private_key(_read_pem(key_path, "WACZ domain key"), None)
    except (ValueError, TypeError) as exc:
        raise SamizdatError(f"the WACZ domain key {key_path} is not an unencrypted PEM private "
                            f"key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SamizdatError(f"the WACZ domain key {key_path} is not an ECDSA key (authsign "
                            "verifies ECDSA signatures only)")
    if key.public_key() != chain[0].public_key():
        raise SamizdatError(f"the WACZ domain key {key_path} is not the key of the first "
                            f"certificate in {cert_path} (the leaf must come first)")
    identity = DomainIdentity(tuple(chain), key)
    if not identity.domain:
        raise SamizdatError(f"the first certificate in {cert_path} names no domain (no CN, no "
                            "DNS subjectAltName)")
    return identity


@dataclass(frozen=True)
class DomainSigner:
    """Signs in domain mode with ``identity`` and a token from the first of ``tsa_urls`` that
    answers (verified against ``tsa_roots``); signs as ``fallback`` when it cannot."""

    identity: DomainIdentity
    tsa_urls: Sequence[str]
    tsa_roots: Sequence[x509.Certificate]
    fallback: WaczSigner
    timeout: float = field(default=10.0)

    def signed_data(self, digest: str, created: str, software: str) -> dict:
        """The spec's domain-mode ``signedData`` for ``digest``, made at ``created``; the
        fallback's anonymous one (logged) when the certificate is not fresh or no TSA answers."""
        from provenance.timestamp import request_timestamps  # the provenance client, lazily

        now = datetime.now(timezone.utc)
        if not self.identity.fresh(now):
            log.warning("WACZ signed anonymously: the domain certificate for %s is usable from "
                        "%s to %s (authsign's window), renew it", self.identity.domain,
                        self.identity.leaf.not_valid_before_utc, self.identity.usable_until())
            return self.fallback.signed_data(digest, created, software)
        der = self.identity.private_key.sign(digest.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        signature = base64.b64encode(der).decode("ascii")
        failures = []
        for url in self.tsa_urls:
            results = request_timestamps(signature.encode("ascii"), [url], self.tsa_roots,
                                         timeout=self.timeout)
            failures += [f"{f.tsa_url}: {f.reason}" for f in results.failures]
            for stamp in results.timestamps:
                chain = tsa_chain(stamp.token, self.tsa_roots)
                if chain is None:
                    failures.append(f"{url}: its token carries no certificate chaining to a root")
                    continue
                return {
                    "hash": digest,
                    "created": created,
                    "software": software,
                    "version": SIGNATURE_VERSION,
                    "signature": signature,
                    "domain": self.identity.domain,
                    "domainCert": self.identity.chain_pem,
                    "timeSignature": base64.b64encode(stamp.token).decode("ascii"),
                    "timestampCert": chain,
                }
        log.warning("WACZ signed anonymously: no TSA time-stamped the domain signature (%s)",
                    "; ".join(failures) or "no TSA configured")
        return self.fallback.signed_data(digest, created, software)


def tsa_chain(token: bytes, roots: Sequence[x509.Certificate]) -> str | None:
    """The PEM chain of the TSA that signed ``token``: its signer certificate (the one for time
    stamping among those the token carries) first, then each issuer up to one of ``roots``,
    the form authsign's ``timestampCert`` takes. None when it does not reach a root."""
    from rfc3161_client import decode_timestamp_response

    carried = [x509.load_der_x509_certificate(der)
               for der in decode_timestamp_response(token).signed_data.certificates]
    pool = carried + list(roots)

    def stamps(cert: x509.Certificate) -> bool:
        try:
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return False
        return x509.ExtendedKeyUsageOID.TIME_STAMPING in usage

    current = next((c for c in carried if stamps(c)), None)
    chain = []
    while current is not None and len(chain) < 8:
        chain.append(current)
        if current in roots:
            return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                           for c in chain)
        current = next((c for c in pool if c.subject == current.issuer and c != current
                        and _issued(current, c)), None)
    return None


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def wacz_signer_for(settings) -> WaczSigner | DomainSigner:  # noqa: ANN001 - config.settings
    """The signer of this archive's WACZ exports: domain mode when ``settings`` configure a
    domain certificate, else the anonymous WACZ key. The domain files are read anew each time, so
    a renewed certificate is used by the next export; if they (or the TSA roots) no longer load,
    the export is signed anonymously and the reason logged (`flask doctor` says it too).
    SamizdatError when the anonymous WACZ key cannot be read."""
    anonymous = load_wacz_signer(settings.wacz_signing_key_path)
    if not settings.wacz_domain_cert:
        return anonymous
    from provenance.timestamp import TimestampError, load_roots

    try:
        identity = load_domain_identity(Path(settings.wacz_domain_cert),
                                        Path(settings.wacz_domain_key))
        roots = load_roots(settings.tsa_roots)
    except (SamizdatError, TimestampError) as exc:
        log.error("WACZ signed anonymously: the domain certificate cannot be used: %s", exc)
        return anonymous
    return DomainSigner(identity, tuple(settings.tsa_url_list), tuple(roots), anonymous)
