"""A real HTTP server on loopback whose article can be rewritten between captures, so one source
gets several successful (changed) captures, each with a stylesheet and an image as requisites."""

from __future__ import annotations

import http.server
import threading
from functools import partial
from pathlib import Path

from tests.sites import PHOTO_PNG, SITE_CSS


class ChangingSite:
    """Serves a directory: ``article.html`` (rewritten by :meth:`publish`), ``site.css`` and
    ``photo.png``."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "site.css").write_bytes(SITE_CSS)
        (root / "photo.png").write_bytes(PHOTO_PNG)
        handler = partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base + path

    def publish(self, title: str, paragraph: str, name: str = "article.html") -> str:
        """Write the article (title, one paragraph, the two requisites) and return its URL."""
        (self.root / name).write_text(
            "<!doctype html><html><head><meta charset=utf-8>"
            f"<title>{title}</title><link rel=stylesheet href=/site.css></head>"
            f"<body><article><h1>{title}</h1><p>{paragraph}</p>"
            '<img src="/photo.png" alt="photo"></article></body></html>',
            encoding="utf-8",
        )
        return self.url("/" + name)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass
