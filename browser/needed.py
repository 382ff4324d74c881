"""Whether an HTTP capture looks script-built, so that a source in ``auto`` mode needs the browser.

Pure: no Flask, nothing of mirror. :func:`browser_needed` reads the HTML a plain GET returned and
the main text extraction found in it (fragments.extract, the same text the fragments are cut
from) and gives a one-line reason when the page's words are evidently put in place by script,
else None. It is conservative on purpose: every signal counts only when extraction found
(almost) no text, so a page whose words arrived with the HTML — an ordinary article, a
server-rendered Next.js page, a page that merely adds a "please enable JavaScript" notice — is
never sent to the browser. Save Page Now makes the same per-URL choice; a wrong "yes" costs a
browser capture, a wrong "no" an empty copy, but the text being there is the one thing the HTTP
capture can prove.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Tag

from fragments.extract import decode_html, extract_main_text, normalize_space

# Below this many characters of extracted text a page may be a shell; at or above it, its words
# came with the HTML and the HTTP capture holds them. (A short article runs to thousands.)
MIN_TEXT_CHARS = 200
# "Little text beside scripts": at least this much inline script, and this many times the text.
MIN_SCRIPT_CHARS = 5000
SCRIPT_TO_TEXT_RATIO = 10
# Enough of the document to see its body's start and its scripts; a shell is small, and parsing
# 20 MB with BeautifulSoup to learn that a page is not one would cost more than the capture.
MAX_PARSED_CHARS = 2_000_000

# The mount points of the common frameworks: React (root, app), Vue (app), Next.js (__next),
# Nuxt (__nuxt, __layout), Gatsby (___gatsby), Svelte(Kit) (svelte), Ember and others (app-root).
_APP_ROOT_IDS = {
    "root", "app", "__next", "__nuxt", "___gatsby", "svelte", "app-root", "application",
    "react-root", "main-app", "spa-root",
}
# Angular's <app-root>, and any custom element named *-root or *-app that holds nothing yet.
_APP_ROOT_TAG = re.compile(r"^[a-z][a-z0-9]*-(root|app)$")
_ENABLE_JS = re.compile(
    r"(enable|turn on|activate|allow|switch on)\s+(your\s+)?javascript"
    r"|javascript\s+(is\s+)?(required|disabled|needed|must be enabled|is not enabled|is off)"
    r"|(requires?|needs?|without)\s+javascript"
    r"|(bật|kích hoạt)\s+javascript"  # Vietnamese: "turn on JavaScript"
    r"|javascript\s+(aktivieren|activer)|activer\s+javascript|activa(r)?\s+javascript",
    re.IGNORECASE,
)
_SCRIPT_TAG = re.compile(rb"<\s*script", re.IGNORECASE)
# Elements a body may hold without holding any of the page's words.
_INERT = {"script", "noscript", "style", "link", "meta", "template", "iframe", "svg", "img",
          "br", "hr", "input"}


def browser_needed(
    html: bytes | str, extracted_text: str | None = None, charset: str | None = None
) -> str | None:
    """Why this HTTP response looks script-built (one line), or None when its text is there.

    ``extracted_text`` is what main-text extraction found in it; given None it is extracted
    here (with ``charset``) the way the fragments are.
    """
    raw = html.encode("utf-8") if isinstance(html, str) else html
    if b"\x00" not in raw[:4096] and _SCRIPT_TAG.search(raw) is None:
        # No script can ever add words to it: say so before paying for an extraction (in any
        # ASCII-compatible encoding; UTF-16 and such go the whole way below).
        return None
    if extracted_text is None:
        extracted_text = extract_main_text(raw, charset=charset, combine=False).text
    text_chars = len(normalize_space(extracted_text))
    if text_chars >= MIN_TEXT_CHARS:
        return None
    # Decoded as extraction decodes it (declared charset, meta, then a guess).
    text = html if isinstance(html, str) else decode_html(raw, charset)
    soup = BeautifulSoup(text[:MAX_PARSED_CHARS], "lxml")
    scripts = soup.find_all("script")
    if not scripts:
        return None  # a short page, but nothing could ever add words to it
    root = _empty_app_root(soup)
    if root is not None:
        return f"an empty app root {root} beside {_count(scripts, 'script')}"
    notice = _noscript_notice(soup)
    if notice is not None:
        return (f'a noscript notice asks for JavaScript ("{notice}") and the page has '
                f"{text_chars} characters of text")
    body = soup.body
    if body is not None and not _visible_text(body) and _only_inert(body):
        return f"the page's body holds only {_count(scripts, 'script')}"
    inline = sum(len(s.string or "") for s in scripts)
    if inline >= MIN_SCRIPT_CHARS and inline >= SCRIPT_TO_TEXT_RATIO * max(text_chars, 1):
        return f"{text_chars} characters of text beside {inline} characters of script"
    return None


def _visible_text(element: Tag) -> str:
    """The text a reader would see in ``element``: without scripts, styles and noscript."""
    parts = []
    for node in element.find_all(string=True):
        if isinstance(node, Comment):
            continue
        if node.find_parent(["script", "style", "noscript", "template"]) is not None:
            continue
        parts.append(str(node))
    return normalize_space(" ".join(parts))


def _only_inert(body: Tag) -> bool:
    """True when every element of the body is a script, a style, a noscript or the like, or an
    empty box (a mount point with no id we know)."""
    for child in body.find_all(True, recursive=False):
        if child.name in _INERT:
            continue
        if child.find(True) is None and not child.get_text(strip=True):
            continue  # an empty <div>: somewhere for a script to write
        return False
    return True


def _empty_app_root(soup: BeautifulSoup) -> str | None:
    """The first framework mount point that holds no visible text, as ``<div id="root">``."""
    for element in soup.find_all(True):
        ident = element.get("id")
        tag = element.name
        if (isinstance(ident, str) and ident.lower() in _APP_ROOT_IDS) or _APP_ROOT_TAG.match(tag):
            if not _visible_text(element):
                return f'<{tag} id="{ident}">' if isinstance(ident, str) else f"<{tag}>"
    return None


def _noscript_notice(soup: BeautifulSoup) -> str | None:
    """The words of a <noscript> that asks the reader to enable JavaScript, cut short."""
    for noscript in soup.find_all("noscript"):
        words = normalize_space(noscript.get_text(" "))
        if not words:
            # lxml parses noscript's content as text when scripting is off; read it as HTML.
            words = normalize_space(BeautifulSoup(noscript.decode_contents(), "lxml").get_text(" "))
        if _ENABLE_JS.search(words):
            return words[:80]
    return None


def _count(items: list, noun: str) -> str:
    """``1 script``, ``3 scripts``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
