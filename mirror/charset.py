"""Working out a fetched page's character encoding: HTTP header, then <meta>, then detection.

A declared charset is trusted only while it decodes the bytes; valid multi-byte UTF-8 wins over a
declared single-byte charset (a very common misdeclaration), and pages without any declaration —
such as Vietnamese pages in windows-1258 — are detected with charset-normalizer.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
SNIFF_BYTES = 4096
DETECT_BYTES = 256 * 1024


def canonical_codec(name: str | None) -> str | None:
    """The Python codec name for a charset label, or None if Python does not know it."""
    if not name:
        return None
    label = name.strip().strip("\"'").lower()
    # WHATWG maps these labels to windows-1252; Python's latin-1 would mis-decode 0x80–0x9f.
    if label in {"iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii"}:
        label = "windows-1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def meta_charset(body: bytes) -> str | None:
    """The charset a page declares in a <meta> tag within its first bytes."""
    match = _META_CHARSET.search(body[:SNIFF_BYTES])
    return match.group(1).decode("ascii", "ignore") if match else None


def _decodes(body: bytes, codec: str) -> bool:
    try:
        body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _is_multibyte_utf8(body: bytes) -> bool:
    return not body.isascii() and _decodes(body, "utf-8")


def detect_charset(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Return (python codec name, how it was found: header/meta/bom/detected/default)."""
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8", "bom"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "bom"
    for declared, how in ((header_charset, "header"), (meta_charset(body), "meta")):
        codec = canonical_codec(declared)
        if codec is None:
            continue
        if codec != "utf-8" and _is_multibyte_utf8(body):
            return "utf-8", "detected"
        if _decodes(body, codec):
            return codec, how
    if body.isascii():
        return "utf-8", "default"
    if _decodes(body, "utf-8"):
        return "utf-8", "detected"
    best = charset_normalizer.from_bytes(body[:DETECT_BYTES]).best()
    if best is not None and canonical_codec(best.encoding):
        return canonical_codec(best.encoding), "detected"
    return "windows-1252", "default"
