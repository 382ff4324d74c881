"""A readable diff of two extracted texts: paragraphs aligned, words marked inserted or deleted.

Pure functions of lists of paragraphs (no Flask, no storage), so they are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

# Paragraphs longer than this many words are compared whole: word matching grows too fast.
MAX_WORDS_COMPARED = 3000
# How alike two paragraphs must be (difflib ratio of their words) to be shown as one edited one.
PAIRING_RATIO = 0.5
# How many candidates ahead a changed paragraph's counterpart is looked for.
PAIRING_WINDOW = 8


@dataclass(frozen=True)
class Segment:
    """A run of words that is the same in both texts, inserted in the newer one, or deleted."""

    kind: str  # same | ins | del
    text: str


@dataclass(frozen=True)
class DiffBlock:
    """One paragraph of the diff, or a note standing for a run of unchanged paragraphs."""

    kind: str  # same | changed | inserted | deleted | skipped
    segments: tuple[Segment, ...] = ()
    skipped: int = 0  # for "skipped": how many unchanged paragraphs it stands for


@dataclass
class TextDiff:
    """The whole diff and its counts (words inserted and deleted)."""

    blocks: list[DiffBlock] = field(default_factory=list)
    inserted_words: int = 0
    deleted_words: int = 0

    @property
    def changed(self) -> bool:
        """True when the texts differ at all."""
        return any(block.kind not in ("same", "skipped") for block in self.blocks)


def diff_words(old: str, new: str) -> list[Segment]:
    """Word-level segments turning ``old`` into ``new`` (whitespace is normalised)."""
    a, b = old.split(), new.split()
    if len(a) > MAX_WORDS_COMPARED or len(b) > MAX_WORDS_COMPARED:
        return [s for s in (Segment("del", old), Segment("ins", new)) if s.text]
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append(Segment("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append(Segment("del", " ".join(a[i1:i2])))
        if j2 > j1:
            segments.append(Segment("ins", " ".join(b[j1:j2])))
    return segments


def _alike(old: str, new: str) -> bool:
    a, b = old.split(), new.split()
    if len(a) > MAX_WORDS_COMPARED or len(b) > MAX_WORDS_COMPARED:
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds first: most unrelated paragraphs are told apart without matching.
    return matcher.real_quick_ratio() >= PAIRING_RATIO and matcher.quick_ratio() >= PAIRING_RATIO \
        and matcher.ratio() >= PAIRING_RATIO


def _replaced(old: list[str], new: list[str]) -> list[DiffBlock]:
    """Blocks for a run of old paragraphs replaced by a run of new ones: each old paragraph is
    paired with the next alike new one (an edit), the rest are whole insertions or deletions."""
    blocks: list[DiffBlock] = []
    j = 0
    for paragraph in old:
        match = next(
            (k for k in range(j, min(len(new), j + PAIRING_WINDOW)) if _alike(paragraph, new[k])), None
        )
        if match is None:
            blocks.append(DiffBlock("deleted", (Segment("del", paragraph),)))
            continue
        blocks.extend(DiffBlock("inserted", (Segment("ins", p),)) for p in new[j:match])
        blocks.append(DiffBlock("changed", tuple(diff_words(paragraph, new[match]))))
        j = match + 1
    blocks.extend(DiffBlock("inserted", (Segment("ins", p),)) for p in new[j:])
    return blocks


def _same_run(paragraphs: list[str], first: bool, last: bool, context: int) -> list[DiffBlock]:
    """An unchanged run, kept only next to changes (``context`` paragraphs each side)."""
    keep_head = 0 if first else context
    keep_tail = 0 if last else context
    if len(paragraphs) <= keep_head + keep_tail + 1:
        return [DiffBlock("same", (Segment("same", p),)) for p in paragraphs]
    head = [DiffBlock("same", (Segment("same", p),)) for p in paragraphs[:keep_head]]
    tail = [DiffBlock("same", (Segment("same", p),)) for p in paragraphs[len(paragraphs) - keep_tail:]]
    skipped = len(paragraphs) - keep_head - keep_tail
    return [*head, DiffBlock("skipped", skipped=skipped), *tail]


def diff_paragraphs(old: list[str], new: list[str], context: int = 1) -> TextDiff:
    """The diff of two texts given as paragraphs, unchanged runs collapsed to ``context``."""
    result = TextDiff()
    opcodes = SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            result.blocks.extend(
                _same_run(old[i1:i2], index == 0, index == len(opcodes) - 1, context)
            )
        else:
            result.blocks.extend(_replaced(old[i1:i2], new[j1:j2]))
    for block in result.blocks:
        for segment in block.segments:
            if segment.kind == "ins":
                result.inserted_words += len(segment.text.split())
            elif segment.kind == "del":
                result.deleted_words += len(segment.text.split())
    return result
