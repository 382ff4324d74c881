"""Stand-ins for the reader pages other branches build, so the static export has real pages to
render and rewrite here (used by tests/archive and bench/bench_static.py).

They are added only where the app has no page at that rule yet: once the real pages are merged,
those are exported instead and these stand-ins go unused.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request, url_for

from mirror.models import Capture, CapturePart

PAGE = """{% extends "archive/base.html" %}{% block title %}{{ title }}{% endblock %}
{% block main %}<h1>{{ title }}</h1>{{ body|safe }}{% endblock %}"""


def add_stand_in_reader_pages(app: Flask) -> None:
    """Stand-ins for the reader pages other branches build (only where the app has none yet).

    They link the way real pages do (url_for, root-relative paths, query strings, the
    archivist's pages, external URLs), which is what the exporter must rewrite.
    """
    have = {rule.rule for rule in app.url_map.iter_rules()}
    bp = Blueprint("stand_in", __name__)
    db = app.extensions["samizdat"]

    per_page = app.config.get("STAND_IN_PER_PAGE", 1)
    compiled = []

    def render_template_string(source: str, **context) -> str:
        # Compiled once: the benchmark renders tens of thousands of these.
        if not compiled:
            compiled.append(app.jinja_env.from_string(source))
        return render_template(compiled[0], **context)

    def sources() -> list[int]:
        with db.Session() as session:
            return [s for (s,) in session.query(Capture.source_id).filter(Capture.status == "ok")
                    .distinct().order_by(Capture.source_id)]

    def captures(source_id: int) -> list[int]:
        with db.Session() as session:
            return [c for (c,) in session.query(Capture.id).filter_by(status="ok", source_id=source_id)
                    .order_by(Capture.id)]

    def front():
        body = "".join(f'<p><a href="/archive/{s}">source {s}</a></p>' for s in sources()[:50])
        body += ('<p><a href="/archive">All pages</a> <a href="/archive?country=VN">Vietnam</a> '
                 '<a href="https://example.org/elsewhere">elsewhere</a> <a href="#main">top</a></p>'
                 '<form action="/archive" method="get"><input name="q"></form>')
        return render_template_string(PAGE, title="Front page", body=body)

    def listing():
        rows = sources()
        page = max(1, request.args.get("page", 1, type=int))
        body = "".join(f'<p><a href="{url_for("stand_in.timeline", source_id=s)}">source {s}</a></p>'
                       for s in rows[(page - 1) * per_page:page * per_page])
        if page * per_page < len(rows):
            body += f'<a rel="next" href="{url_for("stand_in.listing", page=page + 1)}">next</a>'
        if page > 1:
            body += f'<a rel="prev" href="{url_for("stand_in.listing", page=page - 1)}">previous</a>'
        body += f'<a href="{url_for("stand_in.listing", page=2, country="VN")}">filtered</a>'
        return render_template_string(PAGE, title=f"Archive page {page}", body=body)

    def page_name(capture_id: int) -> str:
        with db.Session() as session:
            return session.query(CapturePart).filter_by(capture_id=capture_id, role="page").one().name

    def timeline(source_id: int):
        body = "".join(
            f'<p><a href="/captures/{c}/">read {c}</a> <a href="/captures/{c}/replay">replay {c}</a> '
            f'<a href="{url_for("reader.capture_file", capture_id=c, name=page_name(c))}">original</a></p>'
            for c in captures(source_id))
        body += f'<a href="/archive/{source_id}/diff?a=1&amp;b=2">diff</a>'
        return render_template_string(PAGE, title=f"Timeline {source_id}", body=body)

    def replay(capture_id: int):
        src = url_for("reader.capture_file", capture_id=capture_id, name="offline.html")
        return render_template_string(PAGE, title=f"Replay {capture_id}",
                                      body=f'<iframe sandbox src="{src}" title="archived copy"></iframe>')

    for rule, endpoint, view in (("/", "front", front), ("/archive", "listing", listing),
                                 ("/archive/<int:source_id>", "timeline", timeline),
                                 ("/captures/<int:capture_id>/replay", "replay", replay)):
        if rule not in have:
            bp.add_url_rule(rule, endpoint, view)
    app.register_blueprint(bp)
