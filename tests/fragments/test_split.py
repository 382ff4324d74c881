"""The first splitter: the page's own words, in 1–3 sentence fragments, with stable ids."""

from datetime import datetime, timezone

import pytest

from fragments.split import (
    CaptureInfo,
    fragment_id,
    group_sentences,
    split_capture,
    split_sentences,
)
from tests.sites import COOKIE_TEXT, FOOTER_TEXT, article_html, seed_names, seed_text

INFO = CaptureInfo(
    capture_id=7,
    source_url="https://example.org/article",
    sha256="0" * 64,
    cid="QmTest",
    fetched_at=datetime(2026, 11, 23, tzinfo=timezone.utc),
)


@pytest.mark.parametrize("name", seed_names())
def test_fragments_are_the_articles_own_words(name):
    drafts = split_capture(article_html(name), INFO)
    assert drafts, "a seed article must yield fragments"
    source = " ".join(seed_text(name).split())
    for draft in drafts:
        assert 60 <= len(draft.text) <= 280
        body = draft.text.rstrip("…")
        assert body in source, f"not the article's text: {draft.text!r}"
        for boilerplate in ("Skip to main content", "cookie", "Share this", "Related articles"):
            assert boilerplate.lower() not in draft.text.lower()
        assert "injected by script" not in draft.text


def test_positions_follow_the_page_and_attribution_is_kept():
    drafts = split_capture(article_html(seed_names()[0]), INFO)
    assert [d.position for d in drafts] == list(range(len(drafts)))
    assert all(d.capture.capture_id == 7 and d.capture.cid == "QmTest" for d in drafts)
    assert drafts[0].capture.title  # the page's <title> is picked up


def test_ids_are_stable_and_depend_on_source_and_text():
    a = fragment_id("https://a.example/", "Some  text.")
    assert a == fragment_id("https://a.example/", "Some text.")
    assert a != fragment_id("https://b.example/", "Some text.")
    first = [d.id for d in split_capture(article_html(seed_names()[1]), INFO)]
    again = [d.id for d in split_capture(article_html(seed_names()[1]), INFO)]
    assert first == again and len(set(first)) == len(first)


def test_sentences_keep_abbreviations_and_numbers():
    text = "Mr. Nguyen paid 7.5 million dong on Jan. 5. It was 1,000 times more. Why? Nobody knows."
    assert split_sentences(text) == [
        "Mr. Nguyen paid 7.5 million dong on Jan. 5.",
        "It was 1,000 times more.",
        "Why?",
        "Nobody knows.",
    ]


def test_groups_hold_one_to_three_sentences_within_bounds():
    sentences = ["Short one."] * 7 + ["A much longer sentence that on its own is well past sixty characters."]
    groups = group_sentences(sentences)
    for group in groups:
        assert 60 <= len(group) <= 280
        assert group.count(".") <= 3


def test_overlong_text_is_cut_at_a_word_boundary():
    long_sentence = "word " * 100 + "end."
    (group,) = group_sentences([long_sentence])
    assert len(group) <= 280 and group.endswith("…")
    assert group[:-1].split(" ")[-1] == "word"


@pytest.mark.parametrize(
    "html",
    [
        b"",
        b"<html><body></body></html>",
        b"<script>alert(1)</script><script>more()</script>",
        b"\x00\x01\x02\xff\xfe binary \x89PNG",
        b"<p>unclosed <b>markup <i>everywhere",
    ],
)
def test_degenerate_pages_yield_no_fragments_and_no_crash(html):
    assert split_capture(html, INFO) == []


def test_vietnamese_text_survives_intact():
    text = (
        "Chính quyền Việt Nam đã bắt giữ nhiều nhà hoạt động vì những bài viết trên mạng. "
        "Họ bị kết án nhiều năm tù giam vì tội tuyên truyền chống nhà nước."
    )
    html = f"<html><body><article><p>{text}</p></article></body></html>".encode()
    drafts = split_capture(html, INFO)
    assert " ".join(d.text for d in drafts) == text
