"""Screenshots of the snippet builder and each embed format, for docs/screenshots/.

Captures the seed articles from the loopback fixture site, approves their fragments, publishes the
packs and serves the app; then Debian's Chromium (through Playwright) photographs the builder and
a blog page holding each format. Run: `.venv/bin/python scripts/embed_screenshots.py`.
"""

from __future__ import annotations

import http.server
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from config.settings import Settings  # noqa: E402
from embed.publish import publish_embed  # noqa: E402
from fragments.curation import Reviewer, review_pending  # noqa: E402
from fragments.models import APPROVED  # noqa: E402
from mirror.pipeline import capture_source  # noqa: E402
from mirror.sources import add_source  # noqa: E402
from samizdat import migrate  # noqa: E402
from samizdat.app import create_app  # noqa: E402
from tests.services import free_port  # noqa: E402
from tests.sites import FixtureSite, seed_names  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> None:
    """Build a small archive, publish it, photograph every format."""
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="samizdat-shots-"))
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    port = free_port()
    settings = Settings(data_dir=tmp, database_url=url, fetch_allow_private=True,
                        public_url=f"http://127.0.0.1:{port}", secret_key="screenshots")
    app = create_app(settings)
    rt = app.extensions["samizdat"]
    site = FixtureSite()
    for name in seed_names():
        with rt.Session() as session:
            source_id = add_source(session, site.url(f"/articles/{name}.html"), 60,
                                   country="VN", collection="vietnam").source.id
            session.commit()
        capture_source(rt, source_id)
    with rt.Session() as session:
        review_pending(session, APPROVED, Reviewer("archivist"))
        session.commit()
        report = publish_embed(session, settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    blog_dir = tmp / "blog"
    blog_dir.mkdir()
    blog = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(blog_dir)))
    threading.Thread(target=blog.serve_forever, daemon=True).start()
    script = f"{settings.public_url}/embed/{report.embed_js_versioned}"

    def snippet(size: str, theme: str, words: str = "en") -> str:
        return (f'<blockquote class="samizdat-fragment" data-collection="vietnam" data-size="{size}" '
                f'data-theme="{theme}" data-words="{words}"><p>…</p></blockquote>'
                f'<script async src="{script}" integrity="{report.embed_js_integrity}" crossorigin="anonymous"></script>')

    formats = {
        "card-light": snippet("card", "light"),
        "card-dark-vi": snippet("card", "dark", "vi"),
        "badge": snippet("badge", "light"),
        "banner": snippet("banner", "light"),
        "full": snippet("full", "light"),
        "iframe": f'<iframe src="{settings.public_url}/embed/frame?collection=vietnam&size=card" '
                  f'width="320" height="260" style="border:0" title="Censored words"></iframe>',
    }
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(f"{settings.public_url}/embed?collection=vietnam")
        page.screenshot(path=str(OUT / "embed-builder.png"), full_page=True)
        for name, body in formats.items():
            (blog_dir / f"{name}.html").write_text(
                "<!doctype html><meta charset=utf-8><title>A blog</title>"
                "<body style='font:16px Georgia,serif;max-width:640px;margin:24px auto;background:#f4f1ea'>"
                f"<h1>My blog</h1><p>Words they tried to erase:</p>{body}<p>…and the post goes on.</p>")
            page = browser.new_page(viewport={"width": 700, "height": 520})
            page.goto(f"http://127.0.0.1:{blog.server_port}/{name}.html")
            if name == "iframe":
                page.frame_locator("iframe").locator(".samizdat-embed").wait_for(timeout=15000)
            else:
                page.wait_for_selector(".samizdat-embed", timeout=15000)
            page.screenshot(path=str(OUT / f"embed-{name}.png"))
        browser.close()
    server.shutdown()
    blog.shutdown()
    site.close()
    print(f"wrote {len(formats) + 1} screenshots to {OUT}")


if __name__ == "__main__":
    main()
