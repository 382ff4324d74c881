"""Page requisites: the same-site stylesheets and images a capture needs to render offline.

Bounded in count and bytes, fetched through the same SSRF-guarded fetcher. The capture keeps the
page as served (``index.html``, scripts included, as the WARC does) and adds ``offline.html``: the
same page with requisites pointing at the capture's own ``assets/`` and every script, frame and
event handler removed, under a Content-Security-Policy that forbids scripts — so replaying a
capture never runs its code.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from dataclasses import dataclass
from posixpath import splitext
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from mirror.fetch import FetchResult, Fetcher
from mirror.urls import normalize_url
from samizdat.errors import FetchError, InvalidURLError

ASSET_TYPES = ("text/css", "image/")
_DROP_TAGS = ("script", "noscript", "iframe", "frame", "frameset", "object", "embed", "applet", "base")
_OFFLINE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; script-src 'none'"
)


@dataclass(frozen=True)
class Requisite:
    """One fetched asset and its file name inside the capture's directory."""

    url: str
    name: str
    result: FetchResult


def _site(host: str | None) -> str:
    host = (host or "").lower()
    return host[4:] if host.startswith("www.") else host


def _parse(html: bytes, charset: str | None) -> etree._Element | None:
    # Decoded in Python: libxml2 does not know every codec the fetcher detects (windows-1258).
    try:
        text = html.decode(charset or "utf-8", errors="replace")
    except LookupError:
        text = html.decode("utf-8", errors="replace")
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None


def find_requisites(html: bytes, base_url: str, charset: str | None, limit: int) -> list[str]:
    """Same-site stylesheet and image URLs of a page, in page order, at most ``limit``."""
    root = _parse(html, charset)
    if root is None:
        return []
    site = _site(urlsplit(base_url).hostname)
    found: list[str] = []
    candidates = [
        link.get("href")
        for link in root.iter("link")
        if "stylesheet" in (link.get("rel") or "").lower().split() or "icon" in (link.get("rel") or "").lower()
    ] + [img.get("src") for img in root.iter("img")]
    for ref in candidates:
        if not ref or ref.strip().lower().startswith(("data:", "javascript:")):
            continue
        try:
            url = normalize_url(urljoin(base_url, ref.strip()))
        except InvalidURLError:
            continue
        if _site(urlsplit(url).hostname) != site or url in found:
            continue
        found.append(url)
        if len(found) >= limit:
            break
    return found


def asset_stem(url: str) -> str:
    """The file name of a requisite inside a capture, without extension: derived from its URL,
    so the offline copy can be rewritten later from the page alone."""
    return f"assets/{hashlib.sha256(url.encode()).hexdigest()[:20]}"


def _asset_name(url: str, result: FetchResult) -> str:
    ext = splitext(urlsplit(url).path)[1].lower()
    if not ext or len(ext) > 6:
        ext = mimetypes.guess_extension(result.content_type or "") or ".bin"
    return f"{asset_stem(url)}{ext}"


def asset_names(html: bytes, base_url: str, charset: str | None, limit: int, names: set[str]) -> dict[str, str]:
    """Requisite URL → file name, for the requisites of a page that a capture actually holds."""
    by_stem = {name.rsplit(".", 1)[0] if "." in name[7:] else name: name for name in names}
    found = {}
    for url in find_requisites(html, base_url, charset, limit):
        name = by_stem.get(asset_stem(url))
        if name is not None:
            found[url] = name
    return found


def fetch_requisites(
    fetcher: Fetcher, urls: list[str], max_total_bytes: int, budget_seconds: float
) -> tuple[list[Requisite], list[str]]:
    """Fetch assets within a byte and time budget; return them and one note per skipped asset."""
    deadline = time.monotonic() + budget_seconds
    fetched: list[Requisite] = []
    notes: list[str] = []
    total = 0
    for url in urls:
        if time.monotonic() > deadline:
            notes.append(f"{url}: skipped, time budget spent")
            continue
        try:
            result = fetcher.fetch(url)
        except FetchError as exc:
            notes.append(f"{url}: {exc.reason}")
            continue
        if not result.content_type.startswith(ASSET_TYPES):
            notes.append(f"{url}: not a stylesheet or image ({result.content_type or 'no type'})")
            continue
        if total + len(result.body) > max_total_bytes:
            notes.append(f"{url}: skipped, requisites over {max_total_bytes} bytes")
            continue
        total += len(result.body)
        fetched.append(Requisite(url, _asset_name(url, result), result))
    return fetched, notes


def offline_page(html: bytes, base_url: str, charset: str | None, assets: dict[str, str]) -> bytes | None:
    """The page rewritten to use its captured assets, with every script and frame removed."""
    root = _parse(html, charset)
    if root is None:
        return None
    for element in list(root.iter(*_DROP_TAGS)):
        element.drop_tree()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for attr in list(element.attrib):
            value = element.attrib[attr]
            if attr.lower().startswith("on") or value.strip().lower().startswith("javascript:"):
                del element.attrib[attr]
        for attr in ("href", "src"):
            ref = element.get(attr)
            if not ref:
                continue
            try:
                absolute = normalize_url(urljoin(base_url, ref.strip()))
            except InvalidURLError:
                continue
            if absolute in assets and element.tag in ("link", "img"):
                element.set(attr, assets[absolute])
            elif element.tag == "a":
                element.set(attr, absolute)  # links lead to the live page, not into the capture
        if element.tag == "img":
            element.attrib.pop("srcset", None)  # would fetch from the live site
    head = root.find("head")
    if head is None:
        head = etree.SubElement(root, "head")
        root.insert(0, head)
    meta = etree.Element("meta")
    meta.set("http-equiv", "Content-Security-Policy")
    meta.set("content", _OFFLINE_CSP)
    head.insert(0, meta)
    charset_meta = etree.Element("meta")
    charset_meta.set("charset", "utf-8")
    head.insert(0, charset_meta)
    for old in head.findall("meta[@charset]")[1:]:
        old.drop_tree()
    return lxml.html.tostring(root, encoding="utf-8", doctype="<!DOCTYPE html>")
