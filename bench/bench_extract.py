"""Extraction quality: token-level F1 of the main text against ground truth, ours vs trafilatura.

Pages and their human-checked main text live in bench/data/extract/ (provenance in its README).
Both extractors run on the same pages in the same run; speed is reported as pages per second.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DATA_DIR = Path(__file__).resolve().parent / "data" / "extract"

# Scripts written without spaces between words count one token per character, so a page in
# Chinese, Japanese, Thai or Burmese weighs by its text, not by how few "words" \w+ finds.
_TOKEN = re.compile(
    r"[\u0e00-\u0e7f\u1000-\u109f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
    r"|[^\W\u0e00-\u0e7f\u1000-\u109f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+"
)


@dataclass(frozen=True)
class EvalPage:
    """One evaluation page: its name, bytes, address and ground-truth main text."""

    name: str
    html: bytes
    url: str | None
    truth: str


@dataclass(frozen=True)
class Score:
    """Token-level precision, recall and F1 of one extraction against its ground truth."""

    precision: float
    recall: float
    f1: float


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (one per character for scripts without spaces)."""
    return _TOKEN.findall(text.lower())


def score(extracted: str, truth: str) -> Score:
    """Bag-of-tokens precision, recall and F1 (each token counted as often as it occurs)."""
    got, want = Counter(tokenize(extracted)), Counter(tokenize(truth))
    common = sum((got & want).values())
    if not got and not want:
        return Score(1.0, 1.0, 1.0)
    precision = common / sum(got.values()) if got else 0.0
    recall = common / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1)


def load_pages(root: Path = DATA_DIR) -> list[EvalPage]:
    """Every page under ``root``: NAME.html or NAME.html.gz beside NAME.txt, urls from urls.json."""
    pages = []
    for truth_path in sorted(root.rglob("*.txt")):
        base = truth_path.with_suffix("")
        plain, packed = base.with_suffix(".html"), Path(f"{base}.html.gz")
        if plain.exists():
            html = plain.read_bytes()
        elif packed.exists():
            html = gzip.decompress(packed.read_bytes())
        else:
            continue
        urls_file = truth_path.parent / "urls.json"
        urls = json.loads(urls_file.read_text()) if urls_file.exists() else {}
        url = (urls.get(base.name) or {}).get("url")
        name = f"{truth_path.parent.name}/{base.name}"
        pages.append(EvalPage(name, html, url, truth_path.read_text(encoding="utf-8")))
    return pages


# Page shapes that have made extractors slow: many small blocks, link lists, tables, script-only.
# ``n`` units (50,000 → a 3–5 MiB page); the tests check growth, run() times the 5 MiB page.
PATHOLOGICAL_SHAPES: dict[str, Callable[[int], bytes]] = {
    "paragraphs": lambda n: ("<html><body><article>" + "".join(
        f"<p>Paragraph {i}, with words, and a stop, and then a few more words.</p>" for i in range(n)
    ) + "</article></body></html>").encode(),
    "link-soup": lambda n: (("<div>" + "<div><span>word</span> <a href=#>link text</a></div>" * 20
                             + "</div>") * (n // 10)).encode(),
    "table": lambda n: ("<table>" + "<tr><td>cell, text.</td><td>other cell, with words.</td></tr>" * n
                        + "</table>").encode(),
    "scripts": lambda n: ("<script>var x = 1;</script>" * (n * 5)).encode(),
}


def huge_pages_report() -> list[str]:
    """CPU seconds to extract each pathological shape padded to 5 MiB (goal: under 2 s each)."""
    from fragments.extract import extract_main_text

    extract_main_text(b"<p>warm up: load the language model before timing anything at all.</p>")
    lines = ["", "5 MiB pages of hostile shapes, CPU seconds of `extract_main_text` (goal < 2 s):", "",
             "| Shape | CPU s |", "| --- | --- |"]
    for name, make in PATHOLOGICAL_SHAPES.items():
        html = make(50_000)
        html += b" " * max(0, 5 * 2**20 - len(html))
        started = time.thread_time()
        extract_main_text(html)
        lines.append(f"| {name} | {time.thread_time() - started:.2f} |")
    return lines


def ours(page: EvalPage) -> str:
    """Samizdat's extraction, as `flask fragments extract` prints it."""
    from fragments.extract import extract_main_text

    return extract_main_text(page.html, url=page.url).text


def ours_alone(page: EvalPage) -> str:
    """Samizdat's heuristics without trafilatura's second opinion (what very large pages get)."""
    from fragments.extract import extract_main_text

    return extract_main_text(page.html, url=page.url, combine=False).text


def trafilatura_default(page: EvalPage) -> str:
    """trafilatura.extract with its default settings: the peer to beat."""
    import trafilatura

    return trafilatura.extract(page.html, url=page.url) or ""


def evaluate(extractor: Callable[[EvalPage], str], pages: list[EvalPage]) -> tuple[list[Score], float]:
    """Scores of one extractor on every page, and its speed in pages per second."""
    started = time.perf_counter()
    outputs = [extractor(page) for page in pages]
    elapsed = time.perf_counter() - started
    return [score(out, page.truth) for out, page in zip(outputs, pages)], len(pages) / elapsed


def _mean(values: list[float]) -> float:
    """Arithmetic mean (0 for no values)."""
    return sum(values) / len(values) if values else 0.0


def run() -> str:
    """Run every extractor on the evaluation set and return a Markdown report."""
    pages = load_pages()
    # Warm both up once (imports, py3langid's model) so pages/s measures extraction alone.
    for extractor in (ours, trafilatura_default):
        extractor(pages[0])
    contenders = [
        ("Samizdat (`extract_main_text`)", ours),
        ("Samizdat, heuristics alone (`combine=False`)", ours_alone),
        ("trafilatura 2.3.1 `extract()` defaults", trafilatura_default),
    ]
    results = {label: evaluate(fn, pages) for label, fn in contenders}
    lines = [
        "### Extraction",
        "",
        f"{len(pages)} pages (`bench/data/extract/`), mean per page of token-level scores "
        "against the ground-truth main text:",
        "",
        "| Extractor | F1 | Precision | Recall | pages/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, (scores, speed) in results.items():
        lines.append(
            f"| {label} | {_mean([s.f1 for s in scores]):.3f} | {_mean([s.precision for s in scores]):.3f} "
            f"| {_mean([s.recall for s in scores]):.3f} | {speed:.1f} |"
        )
    lines += ["", "Per page F1 (ours / trafilatura):", ""]
    ours_scores = results[contenders[0][0]][0]
    peer_scores = results[contenders[-1][0]][0]
    for page, mine, peer in zip(pages, ours_scores, peer_scores):
        lines.append(f"- `{page.name}`: {mine.f1:.3f} / {peer.f1:.3f}")
    lines += huge_pages_report()
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
