"""RFC 3161 time-stamps of checkpoints: ask time-stamping authorities, verify their tokens.

A token proves that exact bytes (a checkpoint's body text) existed at the token's ``genTime``,
signed by a time-stamping authority (TSA) that is not Samizdat. Several TSAs may be asked: each one
that fails is reported with its reason and the others are still tried. What is stored and
published is the TSA's whole DER ``TimeStampResp``; a verifier needs only it, the checkpoint's
bytes and the TSAs' root certificates.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from provenance.errors import TimestampError

# A token with a signer certificate and a two-certificate chain is a few kilobytes; 64 KiB leaves
# room for long chains while keeping what a hostile TSA can make us hold small.
MAX_TOKEN_BYTES = 64 * 1024
DEFAULT_TIMEOUT = 10.0  # seconds, for one TSA from connecting to the last byte
# A bundle of a few dozen roots is tens of kilobytes; a file far larger is not a root bundle.
MAX_ROOTS_BYTES = 1024 * 1024
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Timestamp:
    """One TSA's verified token for a checkpoint: its URL, the DER TimeStampResp and genTime."""

    tsa_url: str
    token: bytes
    gen_time: datetime


@dataclass(frozen=True)
class TSAFailure:
    """A TSA that gave no usable token, and why."""

    tsa_url: str
    reason: str


@dataclass(frozen=True)
class TimestampResults:
    """What asking several TSAs gave: the verified tokens and the failures, in the URLs' order."""

    timestamps: tuple[Timestamp, ...]
    failures: tuple[TSAFailure, ...]


def check_tsa_url(url: str) -> str:
    """Return ``url`` if it is an http(s) URL with a host; raise TimestampError otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise TimestampError(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TimestampError(f"{url!r} is not an http(s) URL")
    return url


def request_timestamps(data: bytes, tsa_urls: Iterable[str], roots: Sequence[x509.Certificate], *,
                       intermediates: Sequence[x509.Certificate] = (),
                       timeout: float = DEFAULT_TIMEOUT,
                       max_bytes: int = MAX_TOKEN_BYTES) -> TimestampResults:
    """Ask each TSA for a token over ``data`` (SHA-256, fresh nonce) and keep those that verify.

    A token is only kept once it verifies against ``roots``, so nothing unverifiable is published.
    """
    timestamps: list[Timestamp] = []
    failures: list[TSAFailure] = []
    for url in tsa_urls:
        try:
            timestamps.append(_request_one(data, url, roots, intermediates, timeout, max_bytes))
        except TimestampError as exc:
            failures.append(TSAFailure(url, str(exc)))
    return TimestampResults(tuple(timestamps), tuple(failures))


def _request_one(data: bytes, url: str, roots: Sequence[x509.Certificate],
                 intermediates: Sequence[x509.Certificate], timeout: float,
                 max_bytes: int) -> Timestamp:
    """One TSA's verified token over ``data``."""
    check_tsa_url(url)
    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256) \
        .nonce(nonce=True).cert_request(cert_request=True).build()
    body = _post(url, request.as_bytes(), timeout, max_bytes)
    gen_time = verify_timestamp(body, data, roots, intermediates=intermediates,
                                nonce=request.nonce, max_bytes=max_bytes)
    return Timestamp(url, body, gen_time)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A TSA answers where it was asked; a redirect is a failure, not a hop elsewhere."""

    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, query: bytes, timeout: float, max_bytes: int) -> bytes:
    """POST a TimeStampReq; the reply's bytes, refused past ``max_bytes`` or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=query, method="POST", headers={
        "Content-Type": "application/timestamp-query", "Accept-Encoding": "identity"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise TimestampError(f"the reply announces {length} bytes, over the {max_bytes}-byte limit")
            body = _read_bounded(response, deadline, max_bytes)
            if length is not None and length.isdigit() and len(body) < int(length):
                raise TimestampError(f"the reply was cut short: {len(body)} of {length} bytes")
            return body
    except TimestampError:
        raise
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"HTTP {exc.code}") from exc
    # Refused, unreachable, timed out, reset, cut short (IncompleteRead), a host IDNA rejects.
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TimestampError(f"no reply: {reason!s}" if str(reason) else
                             f"no reply: {type(reason).__name__}") from exc


def _read_bounded(response, deadline: float, max_bytes: int) -> bytes:  # noqa: ANN001 - http.client
    """Read at most ``max_bytes`` + 1 bytes before ``deadline``, whatever the server announces.

    Each read waits at most the socket timeout, so a server dripping bytes is cut off at the
    deadline plus one timeout at worst.
    """
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimestampError("the reply took longer than the timeout")
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > max_bytes:
            raise TimestampError(f"the reply is larger than {max_bytes} bytes")


def load_roots(path: str | os.PathLike) -> list[x509.Certificate]:
    """The certificates of a PEM bundle (the TSAs' trusted roots); TimestampError if unusable."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ROOTS_BYTES + 1)
    except OSError as exc:
        raise TimestampError(f"cannot read the TSA roots {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_ROOTS_BYTES:
        raise TimestampError(f"the TSA roots {path} are larger than {MAX_ROOTS_BYTES} bytes")
    try:
        roots = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TimestampError(f"the TSA roots {path} hold no PEM certificate") from None
    return roots


def printable(text: str, limit: int = 200) -> str:
    """Text a TSA (or a token's maker) wrote, safe for one log or terminal line: no control
    characters, at most ``limit`` characters."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def describe_token(token: bytes) -> str:
    """Who issued a (verified) token and its serial, in words: ``CN=Some TSA, serial 12``."""
    info = _decode(token).tst_info
    try:
        name = info.name
    except Exception:  # noqa: BLE001 - the Rust binding raises when the optional field is absent
        name = None
    if isinstance(name, x509.DirectoryName):
        who = name.value.rfc4514_string()
    elif name is not None and isinstance(getattr(name, "value", None), str):
        who = name.value
    else:
        who = "a TSA that names itself only in its certificate"
    return f"{printable(who)}, serial {info.serial_number}"


def verify_timestamp(token: bytes, data: bytes, roots: Sequence[x509.Certificate], *,
                     intermediates: Sequence[x509.Certificate] = (), nonce: int | None = None,
                     max_bytes: int = MAX_TOKEN_BYTES) -> datetime:
    """The genTime (UTC) of ``token``, a DER TimeStampResp over SHA-256 of exactly ``data``.

    Raises TimestampError unless the token was granted, its messageImprint is SHA-256 of
    ``data``, its nonce is ``nonce`` (when given), and its signer holds a critical
    timeStamping extended key usage and chains to one of ``roots``.
    """
    if not roots:
        raise TimestampError("no trusted TSA root certificate was given")
    if len(token) > max_bytes:
        raise TimestampError(f"the token is larger than {max_bytes} bytes")
    response = _decode(token)
    if response.status != PKIStatus.GRANTED:
        text = printable("; ".join(response.status_string)) or "no reason given"
        raise TimestampError(f"the TSA refused: status {response.status} ({text})")
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256_OID:
        raise TimestampError(f"the token hashes with {imprint.hash_algorithm.dotted_string}, not SHA-256")
    if imprint.message != hashlib.sha256(data).digest():
        raise TimestampError("the token is for other bytes: its messageImprint is not SHA-256 of these")
    if nonce is not None and response.tst_info.nonce != nonce:
        raise TimestampError("the token's nonce is not the one asked for (a replayed or mixed-up reply)")
    builder = VerifierBuilder(roots=list(roots), intermediates=list(intermediates))
    try:
        builder.build().verify_message(response, data)
    except VerificationError as exc:
        # OpenSSL's error stack is long; its "Verify error: ..." names the cause in a few words.
        cause = re.search(r'Verify error: ([^"]+)', str(exc))
        if cause:
            raise TimestampError(f"the token is not signed by a trusted TSA: {cause.group(1)}") from exc
        raise TimestampError(f"the token does not verify: {exc}") from exc
    gen_time = response.tst_info.gen_time
    return gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=timezone.utc)


def _decode(token: bytes) -> TimeStampResponse:
    """Parse a DER TimeStampResp, turning every parser complaint into one TimestampError."""
    try:
        return decode_timestamp_response(token)
    except Exception as exc:  # noqa: BLE001 - the Rust parser raises ValueError and others
        raise TimestampError(f"not an RFC 3161 time-stamp response: {printable(str(exc))}") from exc
