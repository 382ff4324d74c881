"""Screenshots of the reader archive at a phone's width, for docs/screenshots/archive-*.png.

Serves the three seed articles and one Vietnamese page from a loopback site, captures them for
real through the pipeline (one article twice, changed in between, so its timeline and a diff have
something to show), indexes search and serves the app; then Debian's Chromium (through Playwright)
photographs each reader page at 360×740 and reports any page wider than the screen.
Run: `.venv/bin/python scripts/archive_screenshots.py`.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from archive.index import index_new_captures  # noqa: E402
from config.settings import Settings  # noqa: E402
from mirror.models import Capture  # noqa: E402
from mirror.pipeline import capture_source  # noqa: E402
from mirror.sources import add_source  # noqa: E402
from samizdat import migrate  # noqa: E402
from samizdat.app import create_app  # noqa: E402
from tests.services import free_port  # noqa: E402
from tests.sites import PHOTO_PNG, SITE_CSS, article_html, seed_names  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WIDTH, HEIGHT = 360, 740
MAX_BYTES = 250 * 1024

# The seeds are in English; this page gives the Vietnamese search ("ha noi") something to find.
VI_TITLE = "Hà Nội siết chặt kiểm soát mạng xã hội"
VI_PARAGRAPHS = [
    "Chính quyền Hà Nội yêu cầu các nền tảng mạng xã hội gỡ bỏ những bài viết bị coi là "
    "“xuyên tạc” trong vòng 24 giờ, theo Nghị định mới có hiệu lực từ tháng này.",
    "Nhiều blogger ở Hà Nội và Thành phố Hồ Chí Minh cho biết tài khoản của họ đã bị khóa "
    "mà không có lời giải thích, sau khi đăng bài về quyền tự do ngôn luận.",
    "Các tổ chức nhân quyền kêu gọi chính phủ Việt Nam trả tự do cho những người bị bắt giữ "
    "vì bày tỏ quan điểm ôn hòa trên Internet.",
]
UPDATE = ("Update: the authorities have since blocked this report; readers inside Vietnam "
          "now reach it only through mirrors.")


def vietnamese_article() -> bytes:
    body = "\n".join(f"<p>{p}</p>" for p in VI_PARAGRAPHS)
    return (f"<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'><title>{VI_TITLE}</title>"
            "<link rel='stylesheet' href='/static/site.css'></head><body><main><article>"
            f"<h1>{VI_TITLE}</h1><img src='/static/photo.png' alt='Biểu tình'>{body}"
            "</article></main></body></html>").encode()


class Site:
    """A loopback site whose pages the script changes between captures."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[bytes, str]] = {
            "/static/site.css": (SITE_CSS, "text/css"),
            "/static/photo.png": (PHOTO_PNG, "image/png"),
            "/tin-tuc/ha-noi.html": (vietnamese_article(), "text/html; charset=utf-8"),
        }
        for name in seed_names():
            self.pages[f"/articles/{name}.html"] = (article_html(name), "text/html; charset=utf-8")
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - the stdlib's name
                body, kind = pages.get(self.path.split("?", 1)[0], (b"<h1>Not found</h1>", "text/html"))
                self.send_response(200 if self.path.split("?", 1)[0] in pages else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def change(self, path: str) -> None:
        """Add an update paragraph and drop the article's third paragraph: a diff with both."""
        body, kind = self.pages[path]
        paragraphs = body.split(b"<p>")
        del paragraphs[4]
        body = b"<p>".join(paragraphs).replace(
            b"</article>", f"<p>{UPDATE}</p></article>".encode())
        self.pages[path] = (body, kind)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


def build(tmp: Path, port: int):
    """The app with the captures in place; returns (app, settings, ids of interest)."""
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    settings = Settings(data_dir=tmp, database_url=url, fetch_allow_private=True,
                        public_url=f"http://127.0.0.1:{port}", secret_key="screenshots")
    app = create_app(settings)
    rt = app.extensions["samizdat"]
    site = Site()
    paths = [f"/articles/{name}.html" for name in seed_names()] + ["/tin-tuc/ha-noi.html"]
    ids = {}
    for path in paths:
        with rt.Session() as session:
            ids[path] = add_source(session, site.url(path), 360, country="VN",
                                   collection="vietnam").source.id
            session.commit()
        capture_source(rt, ids[path])
    changed = f"/articles/{seed_names()[-1]}.html"
    site.change(changed)
    capture_source(rt, ids[changed])
    index_new_captures(rt)
    with rt.Session() as session:
        captures = session.scalars(select(Capture.id).where(Capture.source_id == ids[changed])
                                   .order_by(Capture.id)).all()
    return app, settings, site, ids[changed], captures


def compile_translations() -> None:
    """Compile the gettext catalogues as `make translations` does (the .mo files are build
    output, absent from a fresh checkout, and without them ?lang=vi shows English)."""
    from babel.messages.frontend import CommandLineInterface

    CommandLineInterface().run(["pybabel", "-q", "compile", "--domain", "messages",
                                "--directory", str(ROOT / "translations")])


def main() -> None:
    """Build a small archive, serve it, photograph each reader page."""
    from playwright.sync_api import sync_playwright

    compile_translations()

    tmp = Path(tempfile.mkdtemp(prefix="samizdat-archive-shots-"))
    port = free_port()
    app, settings, site, source_id, (first, second) = build(tmp, port)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = settings.public_url
    # name: (path, True for the whole page, False for the first screen, or a CSS selector)
    shots: dict[str, tuple[str, bool | str]] = {
        "front": ("/", True),
        "listing": ("/archive", True),
        "search": ("/archive?q=informers", True),
        "search-vi": ("/archive?q=ha+noi", True),
        "timeline": (f"/archive/{source_id}", True),
        "diff": (f"/archive/{source_id}/diff?from={first}&to={second}", True),
        "reader": (f"/captures/{second}/", False),
        "verify": (f"/captures/{second}/#verify", "#verify"),
        "replay": (f"/captures/{second}/replay", False),
        "front-vi": ("/?lang=vi", True),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    problems = []
    links: set[str] = set()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1)
        for name, (path, full) in shots.items():
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            response = page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if response is None or response.status != 200:
                problems.append(f"{path}: status {response and response.status}")
            width = page.evaluate("document.scrollingElement.scrollWidth")
            if width > WIDTH:
                problems.append(f"{path}: {width}px wide, scrolls sideways")
            # Chromium asks for /favicon.ico on its own (the app has none): not the page's fault.
            problems.extend(f"{path}: {e}" for e in errors if "Failed to load resource" not in e)
            links.update(page.eval_on_selector_all(
                "a[href]", "els => els.map(a => a.href.split('#')[0])"))
            target = OUT / f"archive-{name}.png"
            if isinstance(full, str):  # one part of the page
                page.locator(full).screenshot(path=str(target))
            else:
                page.screenshot(path=str(target), full_page=full)
            if target.stat().st_size > MAX_BYTES and full is True:
                page.screenshot(path=str(target), full_page=False)
            size = target.stat().st_size
            print(f"{target.name}: {size // 1024} KiB{'  (over budget)' if size > MAX_BYTES else ''}")
            page.close()
        for link in sorted(links):
            if link.startswith(base):
                status = context.request.get(link, max_redirects=0).status
                if status >= 400:
                    problems.append(f"broken link {link[len(base):]}: {status}")
        browser.close()
    server.shutdown()
    site.server.shutdown()
    for problem in problems:
        print("problem:", problem)
    print(f"wrote {len(shots)} screenshots to {OUT}")


if __name__ == "__main__":
    main()
