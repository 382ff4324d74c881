"""URL validation and normalisation for sources: http/https only, one canonical form per page."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from samizdat.errors import InvalidURLError
from samizdat.text import unstorable_reason

ALLOWED_SCHEMES = {"http", "https"}
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048


def normalize_url(raw: str) -> str:
    """Validate ``raw`` and return its canonical form; raise InvalidURLError with one clear line.

    Scheme and host are lower-cased, the host IDNA-encoded, the default port and the #fragment
    dropped, and an empty path becomes ``/``.
    """
    if raw is None or not str(raw).strip():
        raise InvalidURLError("URL is empty")
    text = str(raw).strip()
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURLError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidURLError(f"URL contains whitespace or control characters: {text!r}")
    reason = unstorable_reason(text)
    if reason:
        raise InvalidURLError(f"URL {reason}: {text!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"malformed URL {text!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURLError(f"URL has no scheme (expected http:// or https://): {text!r}")
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidURLError(f"unsupported scheme {scheme!r} (only http and https): {text!r}")
    host = parts.hostname
    if not host:
        raise InvalidURLError(f"URL has no host: {text!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidURLError(f"URL must not carry credentials: {text!r}")
    if host.startswith("[") or ":" in host:
        host_out = f"[{host}]"
    else:
        try:
            host_out = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidURLError(f"URL host is not a valid domain name: {host!r}") from None
        if host_out.startswith(".") or ".." in host_out:
            raise InvalidURLError(f"URL host is not a valid domain name: {host!r}")
    netloc = host_out
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{host_out}:{port}"
    path = parts.path or "/"
    normalized = urlunsplit((scheme, netloc, path, parts.query, ""))
    # IDNA can lengthen the host (ü → xn--tda): the stored form must fit sources.url too.
    if len(normalized) > MAX_URL_LENGTH:
        raise InvalidURLError(f"URL is longer than {MAX_URL_LENGTH} characters once normalised")
    return normalized
