"""Working out the charset: header, then meta, then detection."""

import pytest

from mirror.charset import canonical_codec, detect_charset, meta_charset
from tests.sites import VIETNAMESE_TEXT, encode_windows_1258, vietnamese_page


def test_header_charset_is_used_when_it_decodes():
    assert detect_charset("Grüße".encode("windows-1252"), "windows-1252") == ("cp1252", "header")


def test_meta_charset_is_used_without_a_header():
    body = b'<html><head><meta charset="windows-1258"></head><body>' + encode_windows_1258(
        VIETNAMESE_TEXT
    )
    assert detect_charset(body, None) == ("cp1258", "meta")


def test_undeclared_windows_1258_is_detected():
    codec, how = detect_charset(encode_windows_1258(vietnamese_page()), None)
    assert (codec, how) == ("cp1258", "detected")


def test_utf8_wins_over_a_wrong_single_byte_declaration():
    assert detect_charset(vietnamese_page().encode(), "iso-8859-1") == ("utf-8", "detected")


def test_declared_charset_that_cannot_decode_is_not_trusted():
    codec, _ = detect_charset(vietnamese_page().encode(), "ascii")
    assert codec == "utf-8"


def test_bom_decides():
    assert detect_charset(b"\xef\xbb\xbf<p>x</p>", "windows-1252") == ("utf-8", "bom")


def test_plain_ascii_defaults_to_utf8():
    assert detect_charset(b"<p>hello</p>", None) == ("utf-8", "default")


@pytest.mark.parametrize(
    "label, codec",
    [("UTF-8", "utf-8"), ("latin1", "cp1252"), ("windows-1258", "cp1258"), ("klingon", None), ("", None)],
)
def test_labels_map_to_python_codecs(label, codec):
    assert canonical_codec(label) == codec


def test_meta_http_equiv_is_read():
    body = b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
    assert meta_charset(body) == "Shift_JIS"
