"""The first splitter: a capture's HTML to short, attributed fragments of 1–3 sentences.

The seam is :func:`split_capture`: bytes and metadata in, :class:`FragmentDraft` records out.
Extraction (what is the page's own text) and sentence splitting are separate functions so either
can be replaced without touching callers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from bs4 import BeautifulSoup

# Elements that never hold the page's own words.
BOILERPLATE_TAGS = [
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "nav", "header", "footer", "aside", "form", "button", "select", "input", "textarea", "menu",
]
TEXT_TAGS = ["p", "blockquote", "li", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "dd"]

DEFAULT_MIN_CHARS = 60
DEFAULT_MAX_CHARS = 280

# A sentence ends at . ! ? or … (optionally followed by closing quotes or brackets) and whitespace,
# when the next word starts like a sentence. Common abbreviations are protected below.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)\]]*\s+(?=[\"'“‘«(\[]?[^\s\da-z])")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "no", "vs", "etc", "e.g", "i.e", "u.s",
    "u.k", "u.n", "inc", "ltd", "co", "corp", "gen", "gov", "sen", "rep", "mt", "ft", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}


@dataclass(frozen=True)
class CaptureInfo:
    """What fragments need to know about the capture they come from (no mirror import)."""

    capture_id: int
    source_url: str
    sha256: str
    cid: str | None
    fetched_at: datetime
    title: str | None = None


@dataclass(frozen=True)
class FragmentDraft:
    """A fragment before it is stored: text, place in the page and attribution."""

    id: str
    position: int
    text: str
    capture: CaptureInfo


def normalize_text(text: str) -> str:
    """NFC-normalise and collapse whitespace: the form fragment ids are computed from."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def fragment_id(source_url: str, text: str) -> str:
    """A stable id from the source and the normalised text, so re-splitting is idempotent."""
    digest = hashlib.sha256(f"{source_url}\n{normalize_text(text)}".encode()).hexdigest()
    return digest[:32]


def extract_title_and_paragraphs(html: bytes, charset: str | None = None) -> tuple[str | None, list[str]]:
    """Parse HTML and return the page title and its text blocks, boilerplate elements removed."""
    soup = BeautifulSoup(html, "lxml", from_encoding=charset)
    title = None
    if soup.title and soup.title.string:
        title = normalize_text(soup.title.string) or None
    for tag in soup.find_all(BOILERPLATE_TAGS):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks: list[str] = []
    for element in root.find_all(TEXT_TAGS):
        # Only the innermost text blocks, so a <li> holding a <p> is not counted twice.
        if element.find(TEXT_TAGS):
            continue
        text = normalize_text(element.get_text(" "))
        if text:
            blocks.append(text)
    return title, blocks


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences, keeping abbreviations and decimals intact."""
    pieces = _SENTENCE_END.split(text)
    sentences: list[str] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if sentences:
            last_word = sentences[-1].rsplit(" ", 1)[-1].rstrip(".").lower()
            if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
                sentences[-1] = f"{sentences[-1]} {piece}"
                continue
        sentences.append(piece)
    return sentences


def _trim_to_words(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` at a word boundary, marking the cut with an ellipsis."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def group_sentences(
    sentences: list[str], min_chars: int = DEFAULT_MIN_CHARS, max_chars: int = DEFAULT_MAX_CHARS
) -> list[str]:
    """Group consecutive sentences into fragments of 1–3 sentences within the length bounds."""
    groups: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        candidate = " ".join([*current, sentence])
        if current and (len(candidate) > max_chars or len(current) == 3):
            groups.append(" ".join(current))
            current = []
        current.append(sentence)
        if len(" ".join(current)) >= min_chars:
            groups.append(" ".join(current))
            current = []
    if current:
        groups.append(" ".join(current))
    out = []
    for group in groups:
        if len(group) < min_chars:
            continue
        out.append(_trim_to_words(group, max_chars))
    return out


def split_capture(
    html: bytes,
    capture: CaptureInfo,
    charset: str | None = None,
    min_chars: int = DEFAULT_MIN_CHARS,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> list[FragmentDraft]:
    """Turn one capture's HTML into fragment drafts, in page order, without duplicates."""
    title, blocks = extract_title_and_paragraphs(html, charset)
    if capture.title is None and title:
        capture = CaptureInfo(**{**capture.__dict__, "title": title})
    drafts: list[FragmentDraft] = []
    seen: set[str] = set()
    for block in blocks:
        for text in group_sentences(split_sentences(block), min_chars, max_chars):
            fid = fragment_id(capture.source_url, text)
            if fid in seen:
                continue
            seen.add(fid)
            drafts.append(FragmentDraft(fid, len(drafts), text, capture))
    return drafts
