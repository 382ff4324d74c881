"""The random fragment's hot path, answered before Flask builds a request.

``GET /api/fragments/random`` is called on every page view of every supporter's site, so its cost
is the embed's cost. Flask's own per-request work (request context, URL matching, the app's hooks,
the response object) costs more than the pick itself: with it, the endpoint could not come near a
bare Flask view (docs/benchmarks.md). This WSGI middleware serves the one ordinary case itself —
a GET with at most ``collection``, ``lang`` and ``format``, a known collection and language, and
a fragment to pick — with exactly the bytes and headers the Flask view sends
(tests/embed/test_random_fastpath.py compares the two). Anything else, errors included, goes on to
the Flask view, which stays the one place that explains what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from flask import Flask

from embed.routes import RANDOM_PATH, RANDOM_RESPONSE_HEADERS, fragment_pool, pick_bodies

PARAMETERS = frozenset({"collection", "lang", "format"})
MIMETYPES = {"json": "application/json", "text": "text/plain; charset=utf-8"}


class RandomFragmentFastPath:
    """WSGI middleware: ordinary random-fragment requests answered here, the rest by ``app``."""

    def __init__(self, app: Flask, wsgi_app: Callable, on_served: Callable[[], None] | None = None):
        self.app = app
        self.wsgi_app = wsgi_app
        # Called once per request answered here (the app's metrics count it: ops/metrics.py).
        self.on_served = on_served

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == RANDOM_PATH and environ.get("REQUEST_METHOD") == "GET":
            answer = self._answer(environ.get("QUERY_STRING", ""))
            if answer is not None:
                body, mimetype = answer
                if self.on_served is not None:
                    self.on_served()
                start_response("200 OK", [("Content-Type", mimetype), ("Content-Length", str(len(body))),
                                          *RANDOM_RESPONSE_HEADERS])
                return [body]
        return self.wsgi_app(environ, start_response)

    def _answer(self, query_string: str) -> tuple[bytes, str] | None:
        """The body and type of an ordinary request, or None to let the Flask view answer."""
        try:
            pairs = parse_qsl(query_string, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            return None
        args = dict(pairs)
        if len(args) != len(pairs) or not args.keys() <= PARAMETERS:
            return None  # repeated or unknown parameters: the view's rules apply
        fmt = args.get("format", "json")
        if fmt not in MIMETYPES:
            return None
        collection = args.get("collection") or None
        language = args.get("lang") or None
        if collection == "all":
            collection = None
        try:
            snapshot = fragment_pool(self.app).snapshot()
            if (collection is not None and collection not in snapshot.collections) or (
                language is not None and language not in snapshot.languages
            ):
                return None
            bodies = pick_bodies(self.app, (collection, language))
        except Exception:
            # The view will meet the same trouble and answer it the app's way (a JSON 5xx).
            return None
        if bodies is None:
            return None
        return (bodies[0], MIMETYPES["json"]) if fmt == "json" else (bodies[1], MIMETYPES["text"])
