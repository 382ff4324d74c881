"""A loopback site of pages a plain GET cannot capture, and of pages that attack a browser.

Script-built pages: an article whose paragraphs come from JSON fetched after load, images that
load only when scrolled into view, a list that grows as one scrolls, a body fetched after a delay,
a redirect chain. Attack pages: a subresource that trickles forever, a popup storm, a page that
grows at every scroll, an alert loop, a script that never returns, media that would autoplay, a
download. The server counts every request so tests can tell what the browser fetched.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.sites import PHOTO_PNG

ARTICLE_PARAGRAPHS = [
    "Bauxite haulers crossed the Mekong ferry at dawn, carrying ore nobody declared.",
    "The provincial inspector signed forty permits in a single afternoon last monsoon.",
    "Villagers in Tam Bo measured the river turning red with their own teaspoons.",
    "A clerk kept copies of the ledgers inside a rice sack beneath the pagoda floor.",
    "Nobody at the ministry answered the seventeen letters the fishermen wrote.",
]
LAZY_IMAGES = 6          # each kind: native loading=lazy, and IntersectionObserver
GROWING_PAGES = 5        # the growing list stops after this many pages of items
GROWING_PAGE_SIZE = 12
DELAYED_TEXT = "The delayed body arrived after the page had already finished loading."
HANG_TEXT = "This sentence is on the page before its script stops answering."
TRICKLE_TEXT = "The words of a page whose picture never finishes arriving."
PIXEL_PNG = PHOTO_PNG  # every image URL serves it

_STYLE = "<style>body{font:20px/1.5 serif;margin:2em;color:#000;background:#fff}</style>"


def _page(title: str, body: str, script: str = "") -> bytes:
    """A small HTML document."""
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>{_STYLE}</head>"
        f"<body>{body}{script_tag}</body></html>"
    ).encode()


ARTICLE = _page(
    "Script-built article",
    '<h1 id="headline">Loading…</h1><main id="app"></main>',
    """
window.addEventListener('load', () => {
  fetch('/article.json').then(r => r.json()).then(data => {
    document.getElementById('headline').textContent = data.title;
    const app = document.getElementById('app');
    for (const text of data.paragraphs) {
      const p = document.createElement('p'); p.textContent = text; app.appendChild(p);
    }
  });
});""",
)


def _lazy_page() -> bytes:
    """Tall page: native lazy images and IntersectionObserver images, 1,500 px apart."""
    blocks = []
    for n in range(LAZY_IMAGES):
        blocks.append(
            f'<div style="height:1500px"><p>Section {n}</p>'
            f'<img loading="lazy" src="/img/native-{n}.png" width="200" height="100">'
            f'<img class="io" data-src="/img/observed-{n}.png" width="200" height="100"></div>'
        )
    script = """
const seen = new IntersectionObserver(entries => {
  for (const e of entries) {
    if (e.isIntersecting) { e.target.src = e.target.dataset.src; seen.unobserve(e.target); }
  }
});
document.querySelectorAll('img.io').forEach(img => seen.observe(img));"""
    return _page("Lazy images", "".join(blocks), script)


GROWING = _page(
    "Growing list",
    '<ul id="list"></ul><p id="more">loading more…</p>',
    """
let page = 0, loading = false, done = false;
function more() {
  if (loading || done) return;
  loading = true;
  fetch('/items?page=' + page).then(r => r.json()).then(data => {
    const list = document.getElementById('list');
    for (const item of data.items) {
      const li = document.createElement('li'); li.textContent = item;
      li.style.height = '120px'; list.appendChild(li);
    }
    page += 1; loading = false; done = data.last;
    if (done) document.getElementById('more').textContent = 'the end';
  });
}
more();
window.addEventListener('scroll', () => {
  if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 200) more();
});""",
)

DELAYED = _page(
    "Delayed body",
    '<div id="body">…</div>',
    """
setTimeout(() => fetch('/delayed/body').then(r => r.text()).then(t => {
  document.getElementById('body').textContent = t;
}), 300);""",
)

TRICKLE = _page(
    "Never finishes",
    # An iframe holds the load event until its document ends, which this one never does.
    f'<p>{TRICKLE_TEXT}</p><iframe src="/trickle.html" width="100" height="50"></iframe>',
)

POPUPS = _page(
    "Popup storm",
    '<p>Popups everywhere.</p><a id="blank" href="/popup-target?via=link" target="_blank">x</a>',
    """
let n = 0;
setInterval(() => {
  for (let i = 0; i < 5; i++) window.open('/popup-target?n=' + (n++), '_blank');
  document.getElementById('blank').click();
}, 50);""",
)

ENDLESS = _page(
    "Endless scroll",
    '<div id="feed"><div style="height:2000px">Start of the endless feed.</div></div>',
    """
let n = 0;
window.addEventListener('scroll', () => {
  const feed = document.getElementById('feed');
  while (window.innerHeight + window.scrollY >= document.body.scrollHeight - 1500 && n < 100000) {
    const d = document.createElement('div'); d.style.height = '1000px';
    d.textContent = 'Entry ' + (n++); feed.appendChild(d);
  }
});""",
)

ALERTS = _page(
    "Alert loop",
    "<p>Dialogs forever.</p>",
    """
window.addEventListener('beforeunload', e => { e.preventDefault(); e.returnValue = 'stay'; });
function loop() { alert('alert'); confirm('confirm?'); prompt('prompt?'); setTimeout(loop, 0); }
setTimeout(loop, 0);""",
)

HANG = _page(
    "Hangs",
    f'<p>{HANG_TEXT}</p><div style="height:5000px"></div>',
    "window.addEventListener('scroll', () => { while (true) {} });",
)

BLANK = _page("Blank", "")

AUTOPLAY = _page(
    "Autoplay",
    '<p id="verdict">waiting</p><audio id="sound" src="/tone.wav" autoplay></audio>',
    """
document.getElementById('sound').play().then(
  () => { document.getElementById('verdict').textContent = 'autoplay played'; },
  e => { document.getElementById('verdict').textContent = 'autoplay refused: ' + e.name; });""",
)


def _tone_wav() -> bytes:
    """One second of a 440 Hz tone, 8 kHz 8-bit mono WAV."""
    import io
    import math
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(1)
        sound.setframerate(8000)
        sound.writeframes(bytes(128 + int(100 * math.sin(2 * math.pi * 440 * i / 8000))
                                for i in range(8000)))
    return out.getvalue()


TONE_WAV = _tone_wav()


class _Handler(BaseHTTPRequestHandler):
    """Serves the pages above; counts every path it is asked for."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, body: bytes, content_type: str = "text/html; charset=utf-8", status=200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        site: BrowserPagesSite = self.server.site  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        path = parts.path
        site.record(self.path, self.headers.get("User-Agent", ""))
        pages = {
            "/article": ARTICLE,
            "/lazy": _lazy_page(),
            "/growing": GROWING,
            "/delayed": DELAYED,
            "/trickle": TRICKLE,
            "/popups": POPUPS,
            "/endless": ENDLESS,
            "/alerts": ALERTS,
            "/hang": HANG,
            "/blank": BLANK,
            "/autoplay": AUTOPLAY,
            "/redirect/end": _page("End of the chain", "<p>The chain ends here.</p>"),
        }
        if path in pages:
            self._send(pages[path])
        elif path == "/article.json":
            data = {"title": "Red river ledgers", "paragraphs": ARTICLE_PARAGRAPHS}
            self._send(json.dumps(data).encode(), "application/json")
        elif path.startswith("/img/"):
            self._send(PIXEL_PNG, "image/png")
        elif path == "/items":
            page = int(parse_qs(parts.query).get("page", ["0"])[0])
            items = [f"item-{page}-{i}" for i in range(GROWING_PAGE_SIZE)]
            data = {"items": items, "last": page + 1 >= GROWING_PAGES}
            self._send(json.dumps(data).encode(), "application/json")
        elif path == "/delayed/body":
            time.sleep(1.0)
            self._send(DELAYED_TEXT.encode(), "text/plain; charset=utf-8")
        elif path.startswith("/redirect/"):
            step = int(path.rsplit("/", 1)[1])
            self._redirect(f"/redirect/{step + 1}" if step < 3 else "/redirect/end")
        elif path == "/trickle.html":
            self._trickle(site)
        elif path == "/tone.wav":
            self._send(TONE_WAV, "audio/wav")
        elif path == "/download":
            body = b"a file the browser must not save"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", 'attachment; filename="payload.bin"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/popup-target":
            self._send(_page("Popup", "<p>A popup.</p>"))
        else:
            self._send(b"not here", "text/plain", status=404)

    def _trickle(self, site: BrowserPagesSite) -> None:
        """A response that never ends: a byte every half second until the client goes away."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", "100000000")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(b"<!doctype html><p>trickle")
            while not site.closing.is_set():
                self.wfile.write(b" ")
                self.wfile.flush()
                site.closing.wait(0.5)
        except OSError:
            pass


class BrowserPagesSite:
    """The site on a free 127.0.0.1 port, served from a background thread."""

    def __init__(self) -> None:
        self.closing = threading.Event()
        self._hits: list[str] = []
        self.agents: set[str] = set()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.site = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this site."""
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def record(self, path: str, agent: str) -> None:
        """Note one request (path with query) and the User-Agent it came with."""
        with self._lock:
            self._hits.append(path)
            self.agents.add(agent)

    def hits(self, prefix: str = "") -> list[str]:
        """The requested paths that start with ``prefix``, in order."""
        with self._lock:
            return [hit for hit in self._hits if hit.startswith(prefix)]

    def close(self) -> None:
        """Stop serving (and end the trickling responses)."""
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
