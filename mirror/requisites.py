"""Page requisites: the same-site stylesheets and images a capture needs to render offline.

Bounded in count and bytes, fetched through the same SSRF-guarded fetcher. The capture keeps the
page as served (``index.html``, scripts included, as the WARC does) and adds ``offline.html``: the
same page cleaned by lxml_html_clean (no script, handler, frame, form or meta refresh) with every
URL pointing at the capture's own ``assets/`` or dropped, under a Content-Security-Policy that
forbids scripts — so replaying a capture never runs its code nor reaches the live web.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from dataclasses import dataclass
from posixpath import splitext
from urllib.parse import urljoin, urlsplit

import lxml.html
import tinycss2
from lxml import etree
from lxml_html_clean import Cleaner
from lxml_html_clean.clean import defs
from tinycss2.serializer import serialize_identifier, serialize_string_value

from mirror.fetch import FetchResult, Fetcher
from mirror.partnames import ASSET_DIR, ASSET_EXTENSION
from mirror.urls import normalize_url
from samizdat.errors import FetchError, InvalidURLError

ASSET_TYPES = ("text/css", "image/")
_OFFLINE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; script-src 'none'; form-action 'none'; base-uri 'none'"
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
    return f"{ASSET_DIR}{hashlib.sha256(url.encode()).hexdigest()[:20]}"


def _asset_name(url: str, result: FetchResult) -> str:
    return requisite_name(url, result.content_type)


def requisite_name(url: str, content_type: str | None) -> str:
    """A requisite's file name inside the capture: its URL's stem and an extension."""
    # Only extensions mirror.partnames accepts: a rebuild refuses any other name.
    ext = splitext(urlsplit(url).path)[1].lower()
    if not ASSET_EXTENSION.fullmatch(ext):
        ext = mimetypes.guess_extension(content_type or "") or ".bin"
    if not ASSET_EXTENSION.fullmatch(ext):
        ext = ".bin"
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
    """Fetch assets within a byte and time budget; return them and one note per skipped asset.

    The time budget is wall clock for all of them together: an asset still arriving when it is
    spent is cut off, however steadily its server trickles bytes."""
    deadline = time.monotonic() + budget_seconds
    fetched: list[Requisite] = []
    notes: list[str] = []
    total = 0
    for url in urls:
        if time.monotonic() > deadline:
            notes.append(f"{url}: skipped, time budget spent")
            continue
        try:
            result = fetcher.fetch(url, deadline=deadline)
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
    """The page as a closed document: cleaned of everything active, every URL pointing at one of
    its captured ``assets`` (requisite URL → file name) or dropped.

    Two passes, in this order, and the order matters:

    1. ``lxml_html_clean``'s Cleaner (maintained, and fixed when someone finds a way past it)
       removes scripts, event handlers, ``javascript:`` URLs, meta (refresh included), forms,
       frames, objects and embeds, and every attribute outside its safe list. It runs first
       because it drops any stylesheet ``<link>`` it cannot vouch for: after our rewriting, the
       links it would see are relative ``assets/…`` names it would delete. So it is told which
       links to keep (those whose URL was captured), by their original URL.
    2. Our rewriter runs last, so nothing after it can bring a URL back: every URL left in an
       attribute, a ``style`` attribute or a ``<style>`` element becomes a captured file or is
       dropped. It only writes names from ``assets``; it cannot undo what the Cleaner removed.

    The Content-Security-Policy meta is added after both (the Cleaner would remove it), and the
    CSP ``sandbox`` header the archive serves this file with remains the second wall.
    """
    root = _parse(html, charset)
    if root is None:
        return None
    resolve = _asset_resolver(base_url, assets)
    _OfflineCleaner(resolve)(root)
    _rewrite_urls(root, resolve, base_url)
    head = root.find("head")
    if head is None:
        head = etree.Element("head")
        root.insert(0, head)
    for name, value in (("http-equiv", "Content-Security-Policy"), ("name", "referrer")):
        meta = etree.Element("meta")
        meta.set(name, value)
        meta.set("content", _OFFLINE_CSP if name == "http-equiv" else "no-referrer")
        head.insert(0, meta)
    charset_meta = etree.Element("meta")
    charset_meta.set("charset", "utf-8")
    head.insert(0, charset_meta)
    return lxml.html.tostring(root, encoding="utf-8", doctype="<!DOCTYPE html>")


# Attributes the Cleaner keeps (its safe list), plus what a page needs to look like itself.
_KEPT_ATTRS = frozenset(defs.safe_attrs) | {"style", "hidden"}
# HTML5 elements the Cleaner's list lacks: without them <main> would be unwrapped.
_KEPT_TAGS = frozenset(defs.tags) | {"main", "picture"}
# Where a captured file may be used: the only (tag, attribute) pairs that ever load one.
_ASSET_ATTRS = {("img", "src"), ("link", "href")}
# Every attribute that can hold a URL. Most are not on the Cleaner's safe list and are gone by
# the time we look; the rest are rewritten or dropped here all the same.
_URL_ATTRS = frozenset({
    "href", "src", "srcset", "imagesrcset", "action", "formaction", "background", "poster",
    "cite", "longdesc", "usemap", "data", "codebase", "classid", "archive", "profile", "manifest",
    "ping", "lowsrc", "dynsrc", "icon", "xlink:href",
})
# CSS functions whose plain string arguments are image URLs, like url()'s.
_CSS_IMAGE_FUNCTIONS = {
    "image", "image-set", "-webkit-image-set", "cross-fade", "-webkit-cross-fade",
}


class _OfflineCleaner(Cleaner):
    """lxml_html_clean's Cleaner, keeping the page's structure and styles and the stylesheet
    links whose files the capture holds."""

    def __init__(self, resolve) -> None:
        super().__init__(
            scripts=True, javascript=True, comments=True, style=False, inline_style=False,
            links=False, meta=True, page_structure=False, processing_instructions=True,
            embedded=True, frames=True, forms=True, annoying_tags=True,
            kill_tags=("noscript", "base", "template"), remove_unknown_tags=False,
            allow_tags=_KEPT_TAGS, safe_attrs_only=True, safe_attrs=_KEPT_ATTRS,
        )
        self._resolve = resolve

    def allow_element(self, el) -> bool:
        """Keep a stylesheet link only when it points at a captured file."""
        if el.tag == "link":
            return self._resolve(el.get("href")) is not None
        return False


def _asset_resolver(base_url: str, assets: dict[str, str]):
    """``ref`` (as written in the page) → the captured file's name, or None."""

    def resolve(ref: str | None) -> str | None:
        if not ref or not ref.strip():
            return None
        try:
            return assets.get(normalize_url(urljoin(base_url, ref.strip())))
        except (InvalidURLError, ValueError):
            return None

    return resolve


def _rewrite_urls(root: etree._Element, resolve, base_url: str) -> None:
    """Point every URL at a captured file or drop it, in attributes and in CSS."""
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower()
        for attr in list(element.attrib):
            name = attr.lower()
            value = element.attrib[attr]
            if name == "style":
                element.set(attr, rewrite_css(value, resolve))
                continue
            if name not in _URL_ATTRS:
                continue
            stripped = value.strip()
            asset = resolve(stripped) if (tag, name) in _ASSET_ATTRS else None
            if asset is not None:
                element.set(attr, asset)
            elif (tag, name) == ("img", "src") and stripped.lower().startswith("data:image/"):
                pass  # inline image: nothing to fetch
            elif name in ("href", "usemap") and stripped.startswith("#"):
                pass  # a place in this very document
            else:
                del element.attrib[attr]
                named = "title" in element.attrib
                if tag in ("a", "area") and name == "href" and stripped and not named:
                    # The reader may still want to know where the link led; it cannot follow it
                    # from the replay (that would reach the live, perhaps blocked, site).
                    try:
                        element.set("title", normalize_url(urljoin(base_url, stripped)))
                    except (InvalidURLError, ValueError):
                        pass
        if tag == "link" and element.get("href") is None:
            element.drop_tree()  # a preload, preconnect or stylesheet we do not hold
        elif tag == "style":
            element.text = rewrite_css(element.text or "", resolve)


def rewrite_css(css: str, resolve) -> str:
    """CSS with every url(), image-set() string and @import pointing at a captured file or gone.

    Tokenised by tinycss2, so escapes (``u\\72l(…)``) and comments cannot hide a URL.
    """
    return _css_tokens(tinycss2.parse_component_value_list(css), resolve, False)


def _css_url(asset: str | None) -> str:
    # Spaces around keep the replacement from fusing with a neighbouring token.
    return f' url("{serialize_string_value(asset)}") ' if asset else " none "


def _css_tokens(tokens, resolve, in_image_function: bool) -> str:
    out: list[str] = []
    skipping_import = False
    for token in tokens:
        if skipping_import:
            # @import pulls a whole stylesheet from wherever it says: drop the rule.
            skipping_import = not (token.type == "literal" and token.value == ";")
            continue
        if token.type == "at-keyword" and token.lower_value == "import":
            skipping_import = True
        elif token.type == "url":
            out.append(_css_url(resolve(token.value)))
        elif token.type == "function" and token.lower_name in ("url", "src"):
            ref = next((arg.value for arg in token.arguments if arg.type == "string"), None)
            out.append(_css_url(resolve(ref)))
        elif token.type == "function":
            inner = _css_tokens(token.arguments, resolve, token.lower_name in _CSS_IMAGE_FUNCTIONS)
            out.append(f"{serialize_identifier(token.name)}({inner})")
        elif token.type == "string" and in_image_function:
            out.append(_css_url(resolve(token.value)))
        elif token.type in ("{} block", "() block", "[] block"):
            opening, closing = token.type[0], token.type[1]
            out.append(opening + _css_tokens(token.content, resolve, in_image_function) + closing)
        else:
            out.append(token.serialize())
    return "".join(out)
