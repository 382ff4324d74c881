"""browser.needed: which HTTP responses look script-built, so that `auto` captures them again in
the browser; real pages' shapes (the frameworks' own starter shells, server-rendered pages, the
fixture site's articles), never a normal article."""

from __future__ import annotations

import json

import pytest

from browser.needed import MIN_TEXT_CHARS, browser_needed
from fragments.extract import extract_main_text
from tests.sites import article_html, encode_windows_1258, seed_names, seed_text

# create-react-app's public/index.html as built (the bundle's file names are hashes).
REACT_SHELL = """<!doctype html><html lang="en"><head><meta charset="utf-8"/>
<link rel="icon" href="/favicon.ico"/><meta name="viewport" content="width=device-width,initial-scale=1"/>
<meta name="theme-color" content="#000000"/><meta name="description" content="Independent news"/>
<link rel="manifest" href="/manifest.json"/><title>Tin Tức</title>
<script defer="defer" src="/static/js/main.5f6b1c2e.js"></script>
<link href="/static/css/main.073c9b0a.css" rel="stylesheet"></head>
<body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>"""

# Vue CLI's public/index.html as built.
VUE_SHELL = """<!DOCTYPE html><html lang=""><head><meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge"><meta name="viewport" content="width=device-width,initial-scale=1.0">
<link rel="icon" href="/favicon.ico"><title>bao-moi</title>
<script defer="defer" src="/js/chunk-vendors.8d3a1c.js"></script><script defer="defer" src="/js/app.41b2f0.js"></script>
<link href="/css/app.2cf6a1.css" rel="stylesheet"></head>
<body><noscript><strong>We're sorry but bao-moi doesn't work properly without JavaScript enabled.
Please enable it to continue.</strong></noscript><div id="app"></div></body></html>"""

# Angular CLI's src/index.html as built: no noscript at all, only <app-root>.
ANGULAR_SHELL = """<!doctype html><html lang="en" data-critters-container><head>
<meta charset="utf-8"><title>NewsPortal</title><base href="/">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/x-icon" href="favicon.ico"><link rel="stylesheet" href="styles.ef46db3751d8e999.css"></head>
<body><app-root></app-root>
<script src="runtime.1a2b3c.js" type="module"></script><script src="polyfills.4d5e6f.js" type="module"></script>
<script src="main.7a8b9c.js" type="module"></script></body></html>"""

# A page whose text arrives as a JSON blob that a script turns into paragraphs (the pattern of
# many news apps): the words are in the HTML, but inside a script, not where a reader sees them.
STATE_SHELL = """<!doctype html><html><head><meta charset="utf-8"><title>Article</title></head>
<body><header><a href="/">Home</a></header><main id="content"><p class="loading">Loading…</p></main>
<script>window.__INITIAL_STATE__ = %s;</script><script src="/assets/render.js"></script></body></html>""" % (
    json.dumps({"article": {"paragraphs": [seed_text(seed_names()[0])] * 3}})
)

# A Flutter web (or Ember) page: the body is nothing but scripts.
SCRIPTS_ONLY = """<!DOCTYPE html><html><head><meta charset="UTF-8"><title>app</title>
<link rel="manifest" href="manifest.json"></head>
<body><script src="flutter_bootstrap.js" async></script><script>window.addEventListener('load', function () { _flutter.loader.load(); });</script></body></html>"""


def nextjs_page(text: str) -> str:
    """A Next.js page rendered on the server: the same mount point as a shell, but full of text,
    and the page's data again in __NEXT_DATA__ (so there is much script too)."""
    paragraphs = "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n") if p.strip())
    data = json.dumps({"props": {"pageProps": {"body": text}}, "page": "/[slug]", "buildId": "b1"})
    return f"""<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/><title>Report</title>
<script src="/_next/static/chunks/webpack-59c5c889.js" defer=""></script>
<script src="/_next/static/chunks/main-app-a1b2.js" async=""></script></head>
<body><div id="__next"><nav><a href="/">Home</a></nav><main><article><h1>Report</h1>{paragraphs}</article></main></div>
<script id="__NEXT_DATA__" type="application/json">{data}</script></body></html>"""


@pytest.mark.parametrize("html, expected", [
    (REACT_SHELL, 'an empty app root <div id="root">'),
    (VUE_SHELL, 'an empty app root <div id="app">'),
    (ANGULAR_SHELL, "an empty app root <app-root>"),
    (SCRIPTS_ONLY, "the page's body holds only 2 scripts"),
])
def test_a_framework_shell_needs_the_browser_and_says_why(html, expected):
    reason = browser_needed(html.encode())
    assert reason is not None and reason.startswith(expected), reason


def test_text_kept_in_a_script_needs_the_browser():
    reason = browser_needed(STATE_SHELL.encode())
    assert reason is not None and "characters of script" in reason, reason


def test_a_noscript_notice_on_an_empty_page_needs_the_browser():
    page = ("<html><head><script src='/app.js'></script></head><body><header>Daily News</header>"
            "<div class='page'></div><noscript>Please turn on JavaScript to read this site."
            "</noscript></body></html>")
    reason = browser_needed(page.encode())
    assert reason is not None and "noscript notice" in reason and "turn on JavaScript" in reason


def test_a_server_rendered_nextjs_page_does_not_need_the_browser():
    page = nextjs_page(seed_text(seed_names()[0]))
    assert browser_needed(page.encode()) is None


@pytest.mark.parametrize("name", seed_names())
def test_a_normal_article_never_needs_the_browser(name):
    # The fixture site's articles: navigation, cookie banner, footer and scripts around the text.
    html = article_html(name)
    assert browser_needed(html) is None
    assert browser_needed(html, extract_main_text(html).text) is None


def test_a_noscript_notice_beside_the_full_text_does_not_need_the_browser():
    text = seed_text(seed_names()[1])
    paragraphs = "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n") if p.strip())
    page = (f"<html><head><title>Report</title><script src='/analytics.js'></script></head><body>"
            f"<noscript>This site works best with JavaScript enabled. Please enable JavaScript."
            f"</noscript><div id='app'><article>{paragraphs}</article></div></body></html>")
    assert browser_needed(page.encode()) is None


def test_a_short_page_without_scripts_does_not_need_the_browser():
    # Nothing could ever add words to it: the browser would see the same.
    page = b"<html><body><div id='root'></div><p>Gone.</p></body></html>"
    assert browser_needed(page) is None


def test_a_short_page_with_a_small_analytics_script_does_not_need_the_browser():
    page = (b"<html><head><title>Contact</title><script>window.dataLayer=[];function gtag(){"
            b"dataLayer.push(arguments)}gtag('js',new Date());</script></head><body><h1>Contact"
            b"</h1><p>Write to us at the address below.</p></body></html>")
    assert browser_needed(page) is None


def test_the_extracted_text_given_is_the_one_judged():
    # The pipeline passes the text it already extracted; that text decides, not a second guess.
    assert browser_needed(REACT_SHELL.encode(), "word " * MIN_TEXT_CHARS) is None
    assert browser_needed(REACT_SHELL.encode(), "") is not None


def test_an_empty_or_binary_response_is_not_sent_to_the_browser():
    assert browser_needed(b"") is None
    assert browser_needed(b"\x89PNG\r\n\x1a\n" + bytes(200)) is None


def test_a_shell_in_a_legacy_charset_is_read_as_extraction_reads_it():
    page = encode_windows_1258(REACT_SHELL.replace('charset="utf-8"', 'charset="windows-1258"'))
    assert browser_needed(page, charset="windows-1258").startswith("an empty app root")
