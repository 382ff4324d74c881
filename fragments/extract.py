"""Main-text extraction: the page's own words, without navigation, notices, bylines or footers.

:func:`extract_main_text` takes a capture's bytes and returns an :class:`Extraction` (title, site
name, language and the main text as typed blocks). It decodes defensively, parses with lxml, strips
elements that never hold an article's words, scores containers by the prose they hold (the
readability idea: paragraphs with commas and few links vote for their parents), keeps the winning
region and filters what is left block by block. On pages of ordinary size trafilatura's opinion of
the main content is combined with ours: blocks both agree on are kept, and ours alone must look
like prose. Very large pages skip trafilatura, whose cost grows too fast with the tree.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field

from lxml import etree

# Bytes that mark a file as something other than HTML (images, archives, PDFs, executables).
_BINARY_MAGIC = (
    b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"\x7fELF",
    b"MZ", b"RIFF", b"OggS", b"fLaC", b"ID3", b"\x00\x00\x01\x00", b"BZh", b"7z\xbc\xaf",
)

# Elements whose content is never the page's own prose.
_DROP_TAGS = {
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "button", "select", "input", "textarea", "option", "label", "nav", "menu", "menuitem",
    "audio", "video", "source", "track", "map", "area", "dialog", "head", "link", "meta",
    "picture", "img", "math", "frameset", "frame",
}
# Page furniture that may, on badly built sites, wrap the whole page: dropped unless it does.
_FURNITURE_TAGS = {"header", "footer", "aside", "form"}
_DROP_ROLES = {
    "navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
    "dialog", "alertdialog", "alert", "toolbar", "tablist", "note",
}

# class/id words of boilerplate containers. Exact words are matched against the split tokens of a
# class or id ("share-bar" → share, bar); prefixes also catch run-together names ("sharebar").
_NEG_WORDS = {
    "nav", "navbar", "navigation", "menu", "menus", "breadcrumb", "breadcrumbs", "footer",
    "sidebar", "share", "sharing", "shares", "social", "cookie", "cookies", "consent", "gdpr",
    "related", "recommended", "recirc", "recirculation", "popular", "trending", "newsletter",
    "subscribe", "subscription", "signup", "comment", "comments", "disqus", "promo", "advert",
    "advertisement", "ad", "ads", "adsense", "adslot", "dfp", "sponsor", "sponsored", "byline",
    "author", "authors", "dateline", "timestamp", "date", "time", "published", "updated", "tags",
    "tag", "keywords", "topics", "pagination", "pager", "print", "toolbar", "tools", "widget",
    "widgets", "modal", "popup", "overlay", "skip", "skiplink", "skiplinks", "sronly",
    "visuallyhidden", "hidden", "hide", "login", "signin", "account", "masthead", "topbar",
    "alert", "outbrain", "taboola", "readmore", "more", "next", "prev", "previous", "caption",
    "credit", "credits", "copyright", "disclaimer", "meta", "metadata", "rail", "banner",
    "header", "follow", "donate", "teaser", "teasers", "promoted", "partner",
    "partners", "footnote", "toc", "video", "gallery", "slideshow", "carousel", "ticker",
    "headline", "headlines", "kicker", "eyebrow", "subscribe", "bio", "profile", "avatar",
    "rating", "feedback", "survey", "poll", "newsletters", "cta", "icon",
    "logo", "search", "utility", "livefyre", "jump", "most", "read", "watch", "listen",
}
_NEG_PREFIXES = (
    "share", "social", "cookie", "newsletter", "breadcrumb", "sidebar", "navbar", "footer",
    "related", "advert", "promo", "outbrain", "taboola", "disqus", "byline", "subscribe",
    "comment", "recommend", "trending", "popular", "masthead",
)
# Words of containers that hold the article itself: they outweigh a stray negative word.
_POS_WORDS = {
    "article", "articlebody", "body", "content", "entry", "main", "post", "story", "text",
    "blog", "news", "prose", "permalink", "hentry", "page", "column", "richtext", "detail",
    "storybody", "postbody", "entrycontent", "bodytext", "maincontent", "contents",
}
# Negative words safe to honour even on a container holding most of the page's text: on a page
# drowning in reader comments, the comments are the biggest block and still not the article.
_STRONG_NEG = {
    "comment", "comments", "disqus", "cookie", "cookies", "consent", "share", "sharing", "social",
    "related", "newsletter", "outbrain", "taboola", "livefyre", "recommended", "sidebar",
}

_STRONG_PREFIXES = ("comment", "share", "social", "cookie", "related")

_BLOCK_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "figcaption", "td", "th",
    "dd", "dt", "div", "section", "article", "main", "body", "html", "address", "caption",
    "summary", "details", "ul", "ol", "dl", "table", "tbody", "thead", "tfoot", "tr", "figure",
    "center", "hr", "fieldset", "legend", "header", "footer", "aside", "form",
}
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

# Whole-block phrases that are page furniture, whatever container they sit in. Anchored, short
# blocks only (see _is_furniture_text): a sentence that merely mentions cookies is kept.
_FURNITURE_PATTERNS = re.compile(
    r"""^(
        skip\ to\ (main\ )?content | log\ ?in | sign\ ?(in|up) | register | subscribe.* |
        share(\ (this|on|via).*)? | tweet | email | print | advertisement | ad | sponsored |
        read\ (more|next|also).* | see\ also.* | related(\ (articles|stories|content|posts|coverage))?:?.* |
        more\ (from|on|stories|news).* | view\ (latest|all|more).* | (you\ may\ )?also\ like.* |
        recommended.* | most\ (read|popular|viewed).* | trending.* | follow\ us.* |
        click\ here.* | continue\ reading.* | comments?(\ \(\d+\))? | \d+\ comments? | leave\ a\ (comment|reply).* |
        back\ to\ top | top\ stories | watch.* | listen.* | photo(graph)?s?:.* | image:.* |
        (photo|image|video|picture)\ (credit|courtesy).* | ©.* | copyright.* | all\ rights\ reserved.* |
        (published|updated|posted|last\ updated|first\ published)\b.* | by\ [\w.\-'’ ]{2,60} |
        tags?:.* | topics?:.* | filed\ under.* | (accept|reject|manage)(\ all)?(\ cookies)?.* |
        previous(\ article|\ post)?.* | next(\ article|\ post)?.* | home | menu | search | close |
        donate(\ now)?.* | newsletter.* | loading.* | please\ enable\ javascript.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# Sentences that only page furniture writes, in a block of any length.
_FURNITURE_ANYWHERE = re.compile(
    r"""(we\ use\ cookies | this\ (web)?site\ uses\ cookies | by\ continuing\ (to\ (use|browse)|you\ accept) |
      accept\ (our|the)\ cookie | cookie\ (policy|settings|preferences) | all\ rights\ reserved |
      sign\ up\ for\ our | subscribe\ to\ our | enable\ javascript | your\ browser\ does\ not\ support |
      share\ this\ (article|story|page) | view\ latest\ press\ releases | terms\ of\ (use|service) )""",
    re.IGNORECASE | re.VERBOSE,
)
# A dateline or byline block: a date and little else ("Updated 12 March 2024, 10:04 GMT").
_MONTHS = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|"
    r"oct(ober)?|nov(ember)?|dec(ember)?|tháng"
)
_DATE_RE = re.compile(
    rf"(\b\d{{1,2}}[/.\-]\d{{1,2}}[/.\-]\d{{2,4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b({_MONTHS})\.?\s+\d{{1,2}}\b|"
    rf"\b\d{{1,2}}\s+({_MONTHS})\b|\b\d{{1,2}}:\d{{2}}\b)",
    re.IGNORECASE,
)
_SENTENCE_PUNCT = re.compile(r"[.!?…。！？؟।]")

# Above this many elements a page skips trafilatura: its cost grows too fast with the tree
# (a 5 MiB page of 50,000 paragraphs takes it several seconds; the budget is 2 s a page).
_COMBINE_MAX_ELEMENTS = 8000
_COMBINE_MAX_CHARS = 1_500_000


@dataclass(frozen=True)
class TextBlock:
    """One block of main text and what kind of element it came from."""

    text: str
    kind: str = "paragraph"  # paragraph | heading | list_item | quote | caption | cell | preformatted


@dataclass(frozen=True)
class Extraction:
    """What extraction keeps of a page: its title, site, language and main-text blocks."""

    title: str | None
    blocks: list[TextBlock] = field(default_factory=list)
    site_name: str | None = None
    language: str | None = None
    url: str | None = None

    @property
    def paragraphs(self) -> list[str]:
        """The main text, one string per block, in page order."""
        return [block.text for block in self.blocks]

    @property
    def text(self) -> str:
        """The main text as one string, blocks separated by newlines."""
        return "\n".join(self.paragraphs)


def normalize_space(text: str) -> str:
    """NFC-normalise and collapse whitespace (including non-breaking and zero-width spaces)."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u200b", "").replace("\ufeff", "").replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip()


# --- decoding -------------------------------------------------------------------------------------


def looks_binary(data: bytes) -> bool:
    """True when the bytes are clearly not text: a known file signature or many control bytes."""
    head = data[:4096].lstrip()
    if head.startswith(_BINARY_MAGIC):
        return True
    if not head:
        return False
    # Text in any charset has almost no C0 controls besides tab/newline/carriage return;
    # UTF-16 text is the exception (every other byte NUL) and is handled by its BOM.
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(head) > 0.05


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)


def _usable_codec(name: str | None) -> str | None:
    """The Python codec name for a declared charset, or None when unknown or not ASCII-compatible."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'").lower()).name
    except LookupError:
        return None
    # A page declaring UTF-16 but read as bytes here without a BOM is almost always lying.
    if codec.startswith(("utf-16", "utf-32")):
        return None
    # Browsers treat latin-1 and ascii labels as windows-1252 (WHATWG Encoding Standard).
    return "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec


def _utf8_with_cp1252_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    """Decode a byte that is not UTF-8 as windows-1252: pages pasted together from mixed sources."""
    bad = error.object[error.start : error.start + 1]
    return bad.decode("cp1252", errors="replace"), error.start + 1


codecs.register_error("samizdat-cp1252", _utf8_with_cp1252_fallback)


def decode_html(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: BOM, then the given charset, then <meta charset>, then UTF-8 with a fallback."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    declared = _usable_codec(charset)
    if declared is None:
        match = _META_CHARSET.search(data[:8192])
        declared = _usable_codec(match.group(1).decode("ascii", "ignore")) if match else None
    if declared and declared != "utf-8":
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            # The declaration is wrong; real UTF-8 is far more common than a broken legacy page.
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    sample = data[:65536]
    valid = sample.decode("utf-8", errors="ignore")
    invalid_bytes = len(sample) - len(valid.encode("utf-8"))
    utf8_chars = sum(1 for c in valid if ord(c) >= 128)
    # More real UTF-8 sequences than stray bytes: a UTF-8 page with pasted-in legacy text.
    # Keep the UTF-8 and read the strays as windows-1252 (a legacy page has almost no
    # valid multi-byte sequences by chance).
    if utf8_chars >= invalid_bytes:
        return data.decode("utf-8", errors="samizdat-cp1252")
    if declared:
        return data.decode(declared, errors="replace")
    return _guess_legacy(data)


def _guess_legacy(data: bytes) -> str:
    """Decode an undeclared, non-UTF-8 page with charset_normalizer's guess on a sample."""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:65536]).best()
        codec = _usable_codec(best.encoding) if best else None
    except Exception:  # noqa: BLE001 - a failed guess must not lose the page
        codec = None
    return data.decode(codec or "cp1252", errors="replace")


# --- parsing and cleaning --------------------------------------------------------------------------

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
# Characters of markup parsed at most: about 1.5 MB of HTML once scripts are gone.
_MAX_PARSED_CHARS = 1_500_000
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def parse_html(text: str) -> etree._Element | None:
    """Parse decoded HTML into an lxml tree, or None when there is nothing to parse."""
    text = _CONTROL_CHARS.sub("", _XML_DECLARATION.sub("", text, count=1))
    # Scripts and styles are dropped before parsing (a news page often carries megabytes of
    # inline JSON), then the rest is bounded, so a page's cost stays within the time budget.
    text = _SCRIPT_OR_STYLE.sub(" ", text)[:_MAX_PARSED_CHARS]
    if not text.strip():
        return None
    # lxml.etree rather than lxml.html: its plain elements are several times cheaper to walk
    # from Python, and BeautifulSoup's tree builder takes 1.5 s for a 5 MiB page on its own.
    parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
    try:
        root = etree.fromstring(text, parser=parser)
    except (ValueError, etree.XMLSyntaxError):
        return None
    return root


def _class_tokens(element: etree._Element) -> set[str]:
    """The words of an element's class and id, lower-cased, camelCase and dashes split."""
    raw = f"{element.get('class', '')} {element.get('id', '')}"
    if not raw.strip():
        return set()
    raw = _CAMEL.sub(" ", raw).lower()
    tokens = {t for t in _TOKEN_SPLIT.split(raw) if t}
    # "sr-only" and "visually-hidden" arrive as two tokens; keep their joined form too.
    tokens |= {t.replace("-", "").replace("_", "") for t in raw.split()}
    return tokens


def _negative_words(tokens: set[str]) -> set[str]:
    """The boilerplate words among class/id tokens (exact words and run-together prefixes)."""
    found = tokens & _NEG_WORDS
    for token in tokens:
        if token.startswith(_NEG_PREFIXES):
            found.add(token)
    return found


def _is_hidden(element: etree._Element) -> bool:
    """True for elements a reader never sees (hidden attribute, display:none, aria-hidden)."""
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    style = element.get("style")
    if style:
        compact = style.replace(" ", "").lower()
        return "display:none" in compact or "visibility:hidden" in compact
    return False


def _text_lengths(root: etree._Element) -> tuple[dict, dict]:
    """Characters of text and of link text under every element, in one bottom-up pass."""
    text_len: dict = {}
    link_len: dict = {}
    for element in reversed(list(root.iter())):
        if not isinstance(element.tag, str):
            continue
        own = len((element.text or "").strip())
        links = 0
        for child in element:
            if isinstance(child.tag, str):
                own += text_len.get(child, 0)
                links += link_len.get(child, 0)
            own += len((child.tail or "").strip())
        if element.tag == "a":
            links = own
        text_len[element] = own
        link_len[element] = links
    return text_len, link_len


def clean_tree(root: etree._Element) -> None:
    """Remove, in place, the elements that never hold the page's own words."""
    # First what is never text (scripts, hidden elements), so that the shares of text computed
    # next are shares of readable text, not of inline JSON.
    _remove([
        element for element in root.iter()
        if not isinstance(element.tag, str)
        or (element.tag.lower() not in ("html", "body")
            and (element.tag.lower() in _DROP_TAGS or _is_hidden(element)))
    ])
    text_len, _ = _text_lengths(root)
    body = root.find("body")
    total = text_len.get(body if body is not None else root, 0) or 1
    doomed = []
    for element in root.iter():
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag in ("", "html", "body"):
            continue
        share = text_len.get(element, 0) / total
        if tag in _FURNITURE_TAGS and share < 0.5:
            doomed.append(element)
            continue
        if (element.get("role") or "").lower() in _DROP_ROLES and share < 0.5:
            doomed.append(element)
            continue
        if tag in ("article", "main"):
            continue
        tokens = _class_tokens(element)
        if not tokens:
            continue
        negative = _negative_words(tokens)
        if not negative:
            continue
        positive = tokens & _POS_WORDS
        strong = bool(negative & _STRONG_NEG) or any(t.startswith(_STRONG_PREFIXES) for t in negative)
        # A container named both "article-body" and "has-share" is the article, unless its
        # negative word is a strong one and it holds little of the page.
        if positive and not (strong and share < 0.3):
            continue
        if share >= 0.5 and not strong:
            continue
        doomed.append(element)
    _remove(doomed)


def _remove(elements: list) -> None:
    """Detach elements from the tree, keeping the text that follows each one."""
    for element in elements:
        parent = element.getparent()
        if parent is None:
            continue
        # Keep the tail: it is text of the parent that follows the removed element.
        tail = element.tail
        if tail and tail.strip():
            previous = element.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + " " + tail
            else:
                parent.text = (parent.text or "") + " " + tail
        parent.remove(element)


# --- blocks ---------------------------------------------------------------------------------------


@dataclass
class _RawBlock:
    """A block of text with the element that holds it, before selection."""

    text: str
    kind: str
    element: etree._Element
    link_chars: int


_KIND_BY_TAG = {
    "li": "list_item", "dd": "list_item", "dt": "list_item", "blockquote": "quote",
    "figcaption": "caption", "caption": "caption", "td": "cell", "th": "cell", "pre": "preformatted",
}
_INLINE_JOINERS = {
    "span", "a", "em", "strong", "b", "i", "u", "small", "sub", "sup", "abbr", "cite", "q", "mark",
    "time", "code", "font", "s", "del", "ins", "kbd", "var", "bdi", "bdo", "wbr", "dfn", "data",
}


# A marker object (compared by identity) for a paragraph break made by <br><br>.
_PARAGRAPH_BREAK = "\n<br><br>\n"
_LINE_BREAK = "\n<br>\n"


class _Frame:
    """Text gathered for one open block element while walking the tree."""

    __slots__ = ("element", "kind", "parts", "link_flags")

    def __init__(self, element: etree._Element, kind: str) -> None:
        self.element = element
        self.kind = kind
        self.parts: list[str] = []
        self.link_flags: list[bool] = []

    def add(self, text: str | None, in_link: bool) -> None:
        """Append a piece of text, remembering whether it was link text."""
        if text:
            self.parts.append(text)
            self.link_flags.append(in_link)


def _kind(tag: str) -> str:
    """The block kind of a block-level tag."""
    if tag in _HEADING_TAGS:
        return "heading"
    return _KIND_BY_TAG.get(tag, "paragraph")


def _flush(frame: _Frame, blocks: list[_RawBlock]) -> None:
    """Turn a frame's gathered text into blocks (cut at blank lines made by <br><br>)."""
    if not frame.parts:
        return
    chunks: list[tuple[list[str], int]] = [([], 0)]
    for part, in_link in zip(frame.parts, frame.link_flags):
        if part is _PARAGRAPH_BREAK:
            chunks.append(([], 0))
            continue
        if part is _LINE_BREAK:
            # A short line without a full stop, ended by <br>, is a heading or a dateline
            # ("Headline<br>Friday, 6 March"): it stands alone so the filters can judge it.
            line = normalize_space("".join(chunks[-1][0]))
            if line and len(line) < 90 and not re.search(r"[.!?…:;,]$", line):
                chunks.append(([], 0))
            else:
                chunks[-1][0].append(" ")
            continue
        pieces, links = chunks[-1]
        pieces.append(part)
        if in_link:
            chunks[-1] = (pieces, links + len(part.strip()))
    for pieces, links in chunks:
        text = normalize_space("".join(pieces))
        if text:
            blocks.append(_RawBlock(text, frame.kind, frame.element, min(links, len(text))))
    frame.parts.clear()
    frame.link_flags.clear()


def collect_blocks(root: etree._Element) -> list[_RawBlock]:
    """Walk the tree in order and cut its text into blocks at block-level elements and <br><br>."""
    blocks: list[_RawBlock] = []
    start = root.find("body")
    start = start if start is not None else root
    # An explicit stack of frames rather than recursion: deep broken markup must not overflow.
    frames = [_Frame(start, "paragraph")]
    in_link = 0
    pending_br = 0
    for event, element in etree.iterwalk(start, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        frame = frames[-1]
        if event == "start":
            if tag == "br":
                pending_br += 1
                # Two line breaks in a row end a paragraph in <br>-separated div soup.
                frame.add(_PARAGRAPH_BREAK if pending_br == 2 else _LINE_BREAK, False)
                continue
            pending_br = 0
            if element is start:
                frame.add(element.text, False)
            elif tag in _BLOCK_TAGS:
                _flush(frame, blocks)
                frames.append(_Frame(element, _kind(tag)))
                frames[-1].add(element.text, in_link > 0)
            else:
                if tag == "a":
                    in_link += 1
                frame.add(element.text, in_link > 0)
            continue
        if element is start:
            break
        if tag == "br":
            frame.add(element.tail, in_link > 0)
            if element.tail and element.tail.strip():
                pending_br = 0
            continue
        if tag in _BLOCK_TAGS:
            _flush(frames.pop(), blocks)
            frames[-1].add(element.tail, in_link > 0)
        else:
            if tag == "a":
                in_link = max(in_link - 1, 0)
            if tag not in _INLINE_JOINERS:
                frame.add(" ", False)
            frame.add(element.tail, in_link > 0)
        if element.tail and element.tail.strip():
            pending_br = 0
    while frames:
        _flush(frames.pop(), blocks)
    return blocks


# --- choosing the main region ---------------------------------------------------------------------

_COMMAS = re.compile(r"[,，、،;]")
_PROSE_KINDS = {"paragraph", "quote", "list_item", "cell", "preformatted"}


def _prose_score(block: _RawBlock) -> float:
    """How much a block looks like article prose: long, with commas and sentences, few links."""
    length = len(block.text)
    if length < 25 or block.kind not in _PROSE_KINDS:
        return 0.0
    if block.link_chars / length > 0.35:
        return 0.0
    score = 1.0 + len(_COMMAS.findall(block.text)) + min(length / 100, 3.0)
    if _SENTENCE_PUNCT.search(block.text):
        score += 1.0
    # List items and table cells are often navigation or data: they vote, but less.
    return score * (0.5 if block.kind in ("list_item", "cell") else 1.0)


def _container(block: _RawBlock) -> etree._Element:
    """The element a block votes for: a paragraph's parent, or a div holding loose text itself."""
    element = block.element
    tag = element.tag.lower() if isinstance(element.tag, str) else ""
    if tag in ("div", "section", "article", "main", "td", "body", "center"):
        return element
    parent = element.getparent()
    # List items vote for the list's parent, so a bulleted passage joins the article around it.
    if tag in ("li", "dd", "dt") and parent is not None and parent.getparent() is not None:
        parent = parent.getparent()
    return parent if parent is not None else element


def _choose_region(blocks: list[_RawBlock], root: etree._Element) -> list[etree._Element]:
    """The elements holding the main text: the best-scored container and its worthy siblings."""
    scores: dict = {}
    for block in blocks:
        score = _prose_score(block)
        if not score:
            continue
        element = _container(block)
        weight = 1.0
        for _ in range(3):
            if element is None:
                break
            scores[element] = scores.get(element, 0.0) + score * weight
            element = element.getparent()
            weight /= 2
    if not scores:
        return []
    text_len, link_len = _text_lengths(root)
    adjusted = {
        element: score * (1 - min(link_len.get(element, 0) / max(text_len.get(element, 1), 1), 1.0))
        for element, score in scores.items()
    }
    best = max(adjusted, key=adjusted.get)
    # An article cut into chunks (ads or widgets between them) scores best in one chunk: climb
    # while an ancestor holds markedly more prose than the current choice and few links.
    totals: dict = {}
    for block in blocks:
        score = _prose_score(block)
        element = _container(block) if score else None
        while element is not None:
            totals[element] = totals.get(element, 0.0) + score
            element = element.getparent()
    body = root.find("body")
    ancestor = best.getparent()
    while ancestor is not None and ancestor is not body and ancestor is not root:
        link_density = link_len.get(ancestor, 0) / max(text_len.get(ancestor, 1), 1)
        if totals.get(ancestor, 0.0) >= 1.5 * totals.get(best, 0.0) and link_density <= 0.3:
            best = ancestor
        ancestor = ancestor.getparent()
    best_score = adjusted.get(best, 0.0) or scores.get(best, 0.0)
    region = [best]
    parent = best.getparent()
    if parent is not None:
        for sibling in parent:
            if sibling is best or not isinstance(sibling.tag, str):
                continue
            # A sibling joins when it scores well itself (lead paragraph in its own wrapper,
            # article continued after an inline ad slot).
            if adjusted.get(sibling, 0.0) >= max(0.2 * best_score, 3.0):
                region.append(sibling)
    return region


def _inside(element: etree._Element, region: set) -> bool:
    """True when the element is one of the region's elements or a descendant of one."""
    while element is not None:
        if element in region:
            return True
        element = element.getparent()
    return False


def _is_furniture_text(block: _RawBlock) -> bool:
    """True for blocks whose words are page furniture: menus, share bars, bylines, datelines."""
    text = block.text
    length = len(text)
    if length <= 120 and _FURNITURE_PATTERNS.match(text.strip(" .:|•·-–—")):
        return True
    if _FURNITURE_ANYWHERE.search(text) and length < 400:
        return True
    if length and block.link_chars / length > 0.5:
        return True
    # A date with little else around it is a dateline ("Thursday 4 May 2023 10.04 BST").
    if length < 90 and _DATE_RE.search(text) and not re.search(r"[.!?]\s*$|[a-z]{3,}[.!?]", text):
        words = re.findall(r"\w+", text)
        if len(words) <= 12:
            return True
    return False


def select_main_blocks(root: etree._Element, title: str | None = None) -> list[TextBlock]:
    """Pick the main-text blocks of a cleaned tree, in page order, furniture filtered out."""
    blocks = collect_blocks(root)
    region = set(_choose_region(blocks, root))
    if not region:
        return []
    title_key = normalize_space(title or "").lower()
    kept: list[TextBlock] = []
    seen: set[str] = set()
    for block in blocks:
        if not _inside(block.element, region) or block.kind == "caption":
            continue
        if _is_furniture_text(block):
            continue
        key = block.text.lower()
        if key in seen or (title_key and key == title_key):
            continue
        if block.kind != "heading" and len(block.text) < 20 and not _SENTENCE_PUNCT.search(block.text):
            continue  # labels: "Advertisement", an author's name, "Photo"
        seen.add(key)
        kept.append(TextBlock(block.text, block.kind))
    # A heading belongs to the text that follows it; one followed by nothing (or by another
    # heading) is a section label of page furniture ("More on this story").
    result: list[TextBlock] = []
    for index, block in enumerate(kept):
        if block.kind == "heading":
            following = kept[index + 1] if index + 1 < len(kept) else None
            if following is None or following.kind == "heading" or len(block.text) > 200:
                continue
        result.append(block)
    return result


# --- metadata -------------------------------------------------------------------------------------


def _meta(root: etree._Element, *names: str) -> str | None:
    """The first non-empty <meta property|name=…> content among the names."""
    for element in root.iter("meta"):
        key = (element.get("property") or element.get("name") or "").lower()
        if key in names:
            value = normalize_space(element.get("content") or "")
            if value:
                return value
    return None


def _page_title(root: etree._Element) -> str | None:
    """The page's title: og:title, else <title>, else the first <h1>."""
    title = _meta(root, "og:title", "twitter:title")
    if not title:
        element = root.find(".//title")
        title = normalize_space("".join(element.itertext())) if element is not None else None
    if not title:
        h1 = root.find(".//h1")
        title = normalize_space("".join(h1.itertext())) if h1 is not None else None
    return title[:500] if title else None


def _declared_language(root: etree._Element) -> str | None:
    """The page's declared language (<html lang>, og:locale), as a bare code such as "vi"."""
    value = root.get("lang") or root.get("xml:lang") or _meta(root, "og:locale", "content-language")
    if not value:
        return None
    code = re.split(r"[-_]", value.strip().lower())[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


# --- public entry point ---------------------------------------------------------------------------


def extract_main_text(
    html: bytes, url: str | None = None, charset: str | None = None, *, combine: bool = True
) -> Extraction:
    """Extract a page's own text (title, site name, language, main-text blocks) from its bytes.

    ``combine=False`` skips trafilatura's second opinion and uses Samizdat's heuristics alone.
    """
    if not html or looks_binary(html):
        return Extraction(title=None, url=url)
    root = parse_html(decode_html(html, charset))
    if root is None:
        return Extraction(title=None, url=url)
    title = _page_title(root)
    site_name = _meta(root, "og:site_name", "application-name")
    declared = _declared_language(root)
    element_count = sum(1 for _ in root.iter())
    second_opinion = None
    if combine and element_count <= _COMBINE_MAX_ELEMENTS and len(html) <= _COMBINE_MAX_CHARS:
        second_opinion = _trafilatura_lines(root, url)
    clean_tree(root)
    blocks = select_main_blocks(root, title)
    if second_opinion is not None:
        blocks = combine_with_second_opinion(blocks, second_opinion)
    language = detect_language(" ".join(b.text for b in blocks[:20])) or declared
    return Extraction(title=title, blocks=blocks, site_name=site_name, language=language, url=url)


# --- trafilatura's second opinion -----------------------------------------------------------------


def _trafilatura_lines(root: etree._Element, url: str | None) -> list[str] | None:
    """Trafilatura's main-text lines for the (uncleaned) tree, or None when it has no opinion."""
    try:
        import trafilatura
    except ImportError:  # optional: Samizdat's own heuristics stand alone
        return None
    try:
        # Serialised, because trafilatura expects lxml.html's element classes, not lxml.etree's.
        text = trafilatura.extract(
            etree.tostring(root, encoding="unicode", method="html"),
            url=url,
            include_comments=False,
            include_images=False,
            include_links=False,
            include_tables=True,
            deduplicate=False,
            with_metadata=False,
            output_format="txt",
        )
    except Exception:  # noqa: BLE001 - a library failure must cost the opinion, not the page
        return None
    if not text:
        return None
    lines = [normalize_space(re.sub(r"^[-*•]\s+", "", line)) for line in text.splitlines()]
    return [line for line in lines if line]


def _tokens(text: str) -> list[str]:
    """Lower-case word tokens, for comparing two extractions."""
    return re.findall(r"\w+", text.lower())


def combine_with_second_opinion(ours: list[TextBlock], theirs: list[str]) -> list[TextBlock]:
    """Keep the blocks both extractors agree on, and ours alone only where it is clearly prose."""
    if not theirs:
        return ours
    their_tokens = set()
    for line in theirs:
        their_tokens.update(_tokens(line))
    if not ours:
        fallback = [_RawBlock(line, "paragraph", None, 0) for line in theirs]  # type: ignore[arg-type]
        return [TextBlock(b.text, b.kind) for b in fallback if not _is_furniture_text(b)]
    agreed = []
    for block in ours:
        tokens = _tokens(block.text)
        agreement = sum(1 for t in tokens if t in their_tokens) / len(tokens) if tokens else 0.0
        agreed.append(agreement >= 0.8)
    first = agreed.index(True) if any(agreed) else len(ours)
    last = len(agreed) - 1 - agreed[::-1].index(True) if any(agreed) else -1
    kept = []
    for index, block in enumerate(ours):
        prose = len(block.text) >= 80 and bool(_SENTENCE_PUNCT.search(block.text))
        # Short list items and headings between blocks both agree on are part of the article.
        inside = first < index < last and len(block.text) >= 30
        if agreed[index] or (prose and block.kind != "heading") or inside:
            kept.append(block)
    return kept


# --- language ---------------------------------------------------------------------------------------

_VIETNAMESE_MARKS = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)


def detect_language(text: str) -> str | None:
    """The language of a text as an ISO 639-1 code ("en", "vi"), or None when too short to tell."""
    text = text[:2000]
    letters = sum(1 for c in text if c.isalpha())
    if letters < 20:
        return None
    # Vietnamese letters are unmistakable; checking them first spares loading the model.
    if len(_VIETNAMESE_MARKS.findall(text)) / letters > 0.05:
        return "vi"
    try:
        import py3langid
    except ImportError:
        return None
    code, _score = py3langid.classify(text)
    return code or None
