"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from config.settings import Settings, load_settings
from samizdat.health import collect_health
from samizdat.runtime import build_runtime
from samizdat.web import close_db_session, json_error, runtime


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for ``settings`` (read from SAMIZDAT_* variables when None)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.secret_key or None
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["samizdat"] = build_runtime(settings)
    app.teardown_appcontext(close_db_session)

    from embed.routes import bp as embed_bp
    from mirror.routes import bp as mirror_bp

    app.register_blueprint(mirror_bp)
    app.register_blueprint(embed_bp)

    @app.get("/healthz")
    def healthz():
        """Which back-ends are configured and reachable; 503 when any is not."""
        report = collect_health(runtime())
        return jsonify(report), (200 if report["status"] == "ok" else 503)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return json_error(exc.code or 500, exc.description or exc.name)

    @app.after_request
    def no_tracking(response):
        # Readers and supporters leave no trace: nothing here sets cookies on public pages.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    from samizdat.cli import register_cli

    register_cli(app)
    logging.getLogger("samizdat").setLevel(logging.INFO)
    return app
