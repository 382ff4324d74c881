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
from tests.scaling import assert_grows_linearly
from tests.sites import article_html, seed_names, seed_text

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


def test_quotations_end_sentences_inside_the_quote_marks():
    text = 'He said: "We will not leave." Then he sat down. "Why?" she asked. Nobody answered.'
    assert split_sentences(text) == [
        'He said: "We will not leave."',
        "Then he sat down.",
        '"Why?" she asked.',
        "Nobody answered.",
    ]


def test_initials_and_titles_do_not_end_sentences():
    text = "J. K. Nguyen met Dr. Tran at 10 a.m. today. The U.S. embassy was closed."
    assert split_sentences(text) == ["J. K. Nguyen met Dr. Tran at 10 a.m. today.", "The U.S. embassy was closed."]


def test_vietnamese_sentences_split_before_capitalised_diacritic_letters():
    text = "Phiên tòa kéo dài chưa đầy một ngày. Đây là bản án nặng nhất. Ông nói: đó là sự thật."
    assert split_sentences(text) == [
        "Phiên tòa kéo dài chưa đầy một ngày.",
        "Đây là bản án nặng nhất.",
        "Ông nói: đó là sự thật.",
    ]


def test_chinese_sentences_split_at_full_width_stops_without_spaces():
    assert split_sentences("政府关闭了网站。记者被拘留了！为什么？") == ["政府关闭了网站。", "记者被拘留了！", "为什么？"]


def test_headings_are_neither_fragments_nor_glued_to_body_text():
    body = "The ministry said the delays were caused by a new payment system, and arrears would be paid."
    html = f"<article><h2>What the ministry says</h2><p>{body}</p><p>{body} Again.</p></article>".encode()
    texts = [d.text for d in split_capture(html, INFO)]
    assert texts and all("What the ministry says" not in t for t in texts)


def test_long_list_items_become_fragments_of_their_own():
    items = [
        "the use of tax investigations against independent outlets that criticise officials;",
        "laws on false information drafted so broadly that almost any criticism falls under them.",
    ]
    html = ("<article><p>The index highlights two trends, which the authors describe in detail:</p><ul>"
            + "".join(f"<li>{i}</li>" for i in items) + "</ul></article>").encode()
    texts = [d.text for d in split_capture(html, INFO)]
    assert items[0] in texts and items[1] in texts


def test_length_bounds_are_configurable_and_words_are_never_cut():
    text = " ".join(f"Sentence number {i} talks about the river, the dam and the village." for i in range(12))
    html = f"<article><p>{text}</p></article>".encode()
    drafts = split_capture(html, INFO, min_chars=100, max_chars=150)
    words = set(text.replace(".", " ").replace(",", " ").split())
    for draft in drafts:
        assert 100 <= len(draft.text) <= 150
        assert set(draft.text.rstrip("…").replace(".", " ").replace(",", " ").split()) <= words


def test_fragments_carry_the_language_of_their_text():
    html = f"<html lang='en'><body><article><p>{VIETNAMESE_TEXT_LONG}</p></article></body></html>".encode()
    drafts = split_capture(html, INFO)
    assert drafts and all(d.language == "vi" for d in drafts)


VIETNAMESE_TEXT_LONG = (
    "Chính quyền Việt Nam đã bắt giữ nhiều nhà hoạt động vì những bài viết trên mạng. "
    "Họ bị kết án nhiều năm tù giam vì tội tuyên truyền chống nhà nước. "
    "Người dân sợ hãi khi đăng thông tin trên Internet, và nhiều người đã ngừng viết."
)


def fifty_thousand_paragraphs(n: int) -> bytes:
    return ("<article>" + "".join(
        f"<p>Paragraph {i} reports what the villagers said, and what the police did next.</p>" for i in range(n)
    ) + "</article>").encode()


def test_a_page_of_fifty_thousand_paragraphs_is_split_bounded_and_in_linear_time():
    drafts = split_capture(fifty_thousand_paragraphs(50_000), INFO, max_fragments=500)
    assert len(drafts) == 500 and drafts[0].text.startswith("Paragraph 0 ")
    assert_grows_linearly(fifty_thousand_paragraphs, lambda html: split_capture(html, INFO, max_fragments=500),
                          small=5_000)


def test_right_to_left_and_mixed_encoding_pages_split_without_error():
    arabic = "احتجزت السلطات صحفية مستقلة بعد أيام من نشرها تحقيقاً عن عقود حكومية. وطالبت النقابة بالإفراج عنها فوراً."
    drafts = split_capture(f"<div dir='rtl'><p>{arabic}</p></div>".encode(), INFO)
    assert " ".join(d.text for d in drafts) == arabic
    mixed = ("<p>Nguyễn said the café was “closed” by police, and nobody in the street knew why.</p>".encode()
             .replace("“".encode(), b"\x93"))
    (draft,) = split_capture(mixed, INFO)
    assert draft.text.startswith("Nguyễn said the café was “closed”")
