"""URL validation and normalisation."""

import pytest

from mirror.urls import normalize_url
from samizdat.errors import InvalidURLError


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a?b=1#frag", "https://example.com/a?b=1"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("  https://bbc.co.uk/news  ", "https://bbc.co.uk/news"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("http://[::1]:8000/p", "http://[::1]:8000/p"),
    ],
)
def test_urls_are_normalised(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("example.com/page", "no scheme"),
        ("ftp://example.com/file", "unsupported scheme"),
        ("javascript:alert(1)", "unsupported scheme"),
        ("file:///etc/passwd", "unsupported scheme"),
        ("http://", "no host"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com:99999/", "malformed"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://" + "a" * 3000 + ".com/", "longer than"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(raw, message):
    with pytest.raises(InvalidURLError, match=message):
        normalize_url(raw)
