"""The splitter: a capture's HTML to short, attributed fragments of 1–3 sentences.

The seam is :func:`split_capture`: bytes and metadata in, :class:`FragmentDraft` records out.
Extraction (what is the page's own text, :mod:`fragments.extract`) and sentence splitting are
separate functions so either can be replaced without touching callers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime

from fragments.extract import TextBlock, detect_language, extract_main_text

DEFAULT_MIN_CHARS = 60
DEFAULT_MAX_CHARS = 280
# A page yields at most this many fragments: the time spent on one capture stays bounded (a page
# of 50,000 paragraphs is a dump, not an article) and nobody curates more than this from a page.
DEFAULT_MAX_FRAGMENTS = 2000

# Where a sentence may end: Latin-style stops followed by space (closing quotes or brackets
# belong to the sentence), and stops of scripts that need no space after them (CJK, Devanagari,
# Burmese, Ethiopic, Arabic question mark, Urdu full stop).
_CANDIDATE_END = re.compile(
    r"[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？]+[”’」』）)]*|[؟۔।॥။።]+[\"'”’»)\]]*"
)
_OPENERS = "\"'“‘«([¿¡„"
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "no", "nos", "vs", "etc", "e.g", "i.e",
    "u.s", "u.k", "u.n", "inc", "ltd", "co", "corp", "gen", "gov", "sen", "rep", "mt", "ft", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "col", "capt",
    "lt", "sgt", "maj", "rev", "hon", "pres", "gov", "dept", "univ", "approx", "est", "fig", "vol",
    "pp", "p", "ph.d", "a.m", "p.m", "cf", "al", "ave", "blvd", "rd", "op", "ed", "eds", "tp",
    "ths", "ts", "gs", "pgs",  # Vietnamese: thành phố, thạc sĩ, tiến sĩ, giáo sư, phó giáo sư
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
    # Attribution the caller knows from its own records (the source's country, collection and
    # category); the site name comes from the page itself when the caller has none.
    site_name: str | None = None
    country: str | None = None
    collection: str | None = None
    category_code: str | None = None


@dataclass(frozen=True)
class FragmentDraft:
    """A fragment before it is stored: text, place in the page and attribution."""

    id: str
    position: int
    text: str
    capture: CaptureInfo
    language: str | None = None  # ISO 639-1 code of the page's main text, e.g. "en", "vi"


def normalize_text(text: str) -> str:
    """NFC-normalise and collapse whitespace: the form fragment ids are computed from."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def fragment_id(source_url: str, text: str) -> str:
    """A stable id from the source and the normalised text, so re-splitting is idempotent."""
    digest = hashlib.sha256(f"{source_url}\n{normalize_text(text)}".encode()).hexdigest()
    return digest[:32]


def _is_sentence_end(text: str, match: re.Match) -> bool:
    """Whether a candidate stop really ends a sentence (not an abbreviation, initial or aside)."""
    stop = match.group(0)
    following = text[match.end() :].lstrip()
    while following and following[0] in _OPENERS:
        following = following[1:]
    if not following:
        return True
    if stop[0] in "。！？؟۔।॥။።":
        return True
    nxt = following[0]
    # A lower-case or numeric continuation ("Why?" he asked; on Jan. 5) is the same sentence.
    if nxt.islower() or nxt.isdigit():
        return False
    if stop[0] == ".":
        word = text[: match.start()].rsplit(None, 1)[-1] if text[: match.start()].strip() else ""
        word = word.lstrip(_OPENERS).lower()
        if word in _ABBREVIATIONS:
            return False
        # A single letter before the stop is an initial ("J. Smith"), not a sentence.
        if len(word) == 1 and word.isalpha():
            return False
    return True


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences, keeping abbreviations, initials and decimals intact."""
    sentences: list[str] = []
    start = 0
    for match in _CANDIDATE_END.finditer(text):
        if not _is_sentence_end(text, match):
            continue
        piece = text[start : match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _trim_to_words(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` at a word boundary, marking the cut with an ellipsis."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars - 1]
    if " " in head.strip():
        cut = head.rsplit(" ", 1)[0]
    else:
        # Scripts written without spaces (Chinese, Japanese, Thai) are cut after a comma-like
        # mark when there is one, else between characters, which is where their words meet.
        marks = [head.rfind(m) for m in "，、；,;"]
        best = max(marks)
        cut = head[: best + 1] if best > max_chars // 2 else head
    return cut.rstrip(" ,;:，、；") + "…"


def group_sentences(
    sentences: list[str], min_chars: int = DEFAULT_MIN_CHARS, max_chars: int = DEFAULT_MAX_CHARS
) -> list[str]:
    """Group consecutive sentences into fragments of 1–3 sentences within the length bounds."""
    groups: list[list[str]] = []
    current: list[str] = []
    for sentence in sentences:
        candidate = " ".join([*current, sentence])
        if current and (len(candidate) > max_chars or len(current) == 3):
            groups.append(current)
            current = []
        current.append(sentence)
        if len(" ".join(current)) >= min_chars:
            groups.append(current)
            current = []
    if current:
        # A short last sentence joins the group before it when that still fits the bounds,
        # rather than being thrown away.
        if groups and len(groups[-1]) < 3 and len(" ".join([*groups[-1], *current])) <= max_chars:
            groups[-1] = [*groups[-1], *current]
        else:
            groups.append(current)
    out = []
    for group in groups:
        text = " ".join(group)
        if len(text) < min_chars:
            continue
        out.append(_trim_to_words(text, max_chars))
    return out


# Headings label the text after them and captions describe a picture: neither is a fragment.
_FRAGMENT_KINDS = {"paragraph", "quote", "list_item", "cell", "preformatted"}


def split_blocks(
    blocks: list[TextBlock],
    min_chars: int = DEFAULT_MIN_CHARS,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_fragments: int = DEFAULT_MAX_FRAGMENTS,
) -> list[str]:
    """Fragment texts from extracted blocks, in order, without duplicates, headings left out."""
    texts: list[str] = []
    seen: set[str] = set()
    for block in blocks:
        if block.kind not in _FRAGMENT_KINDS:
            continue
        for text in group_sentences(split_sentences(block.text), min_chars, max_chars):
            key = normalize_text(text)
            if key in seen:
                continue
            seen.add(key)
            texts.append(text)
            if len(texts) >= max_fragments:
                return texts
    return texts


def split_capture(
    html: bytes,
    capture: CaptureInfo,
    charset: str | None = None,
    min_chars: int = DEFAULT_MIN_CHARS,
    max_chars: int = DEFAULT_MAX_CHARS,
    *,
    max_fragments: int = DEFAULT_MAX_FRAGMENTS,
) -> list[FragmentDraft]:
    """Turn one capture's HTML into fragment drafts, in page order, without duplicates."""
    extraction = extract_main_text(html, url=capture.source_url, charset=charset)
    if capture.title is None and extraction.title:
        capture = replace(capture, title=extraction.title)
    if capture.site_name is None and extraction.site_name:
        capture = replace(capture, site_name=extraction.site_name[:255])
    texts = split_blocks(extraction.blocks, min_chars, max_chars, max_fragments)
    language = extraction.language
    drafts: list[FragmentDraft] = []
    for text in texts:
        # Pages quoting another language keep that quote's own language when it is clear.
        own = detect_language(text) if len(text) >= 120 else None
        drafts.append(
            FragmentDraft(fragment_id(capture.source_url, text), len(drafts), text, capture, own or language)
        )
    return drafts
