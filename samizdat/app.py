"""The Flask application factory."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, LengthRequired, RequestEntityTooLarge

from config.logs import configure_logging
from config.settings import Settings, load_settings
from samizdat.i18n import init_i18n
from samizdat.runtime import build_runtime
from samizdat.secret_key import load_secret_key
from samizdat.tasks import TASKS_KEY
from samizdat.errorpages import database_unavailable, error_response
from samizdat.web import (
    DatabaseIdConverter,
    StorableJSONProvider,
    close_db_session,
    reject_unstorable_input,
)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for ``settings`` (read from SAMIZDAT_* variables when None)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    # Before any blueprint adds a route: every <int:…> becomes a bounded database id (404 past it).
    app.url_map.converters["int"] = DatabaseIdConverter
    app.json = StorableJSONProvider(app)
    app.config["SECRET_KEY"] = load_secret_key(settings)
    # Only the login flow and archivist pages ever write the session, so only they set this cookie.
    app.config.update(
        SESSION_COOKIE_NAME="samizdat_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_lifetime_hours),
        # No refresh on every request: an archivist reading public pages gets no Set-Cookie there.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.config["JSON_SORT_KEYS"] = False
    # Werkzeug stops reading a body (Content-Length or chunked) past this and answers 413, so a
    # 1.5 GB upload is never spooled to disk; Flask 3.1's form-field and part limits stay on.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["samizdat"] = build_runtime(settings)
    app.teardown_appcontext(close_db_session)
    # Reader pages in English or Vietnamese: ?lang= or Accept-Language, never a cookie.
    init_i18n(app, settings.translations_path)
    @app.before_request
    def refuse_oversized_body():
        """413 as soon as the headers declare too large a body: before auth, limits or parsing."""
        # Registered before the login limiter, so its key function never parses such a form.
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            # A chunked body's size is known only once read, and Werkzeug quietly truncates one
            # at the limit; browsers and HTTP clients send a Content-Length for forms and files.
            raise LengthRequired("send a Content-Length; chunked request bodies are not accepted")
        length = request.content_length
        if length is not None and length > settings.max_request_bytes:
            raise RequestEntityTooLarge(
                f"the request body is larger than {settings.max_request_bytes} bytes"
            )

    # After the size check: this one reads form fields, which means reading the body.
    app.before_request(reject_unstorable_input)

    from accounts.manage import bp as accounts_manage_bp
    from accounts.routes import bp as accounts_bp
    from archive.browse import bp as browse_bp
    from archive.memento import bp as memento_bp
    from archive.reading import bp as reading_bp
    from archive.replay import bp as replay_bp
    from archive.static_copy import bp as static_copy_bp
    from archive.timeline import bp as timeline_bp
    from archive.wacz import bp as wacz_bp
    from embed.builder import bp as embed_builder_bp
    from embed.public import bp as embed_public_bp
    from embed.routes import bp as embed_bp
    from fragments.review import bp as review_bp
    from fragments.routes import bp as fragments_bp
    from mirror.manage import bp as manage_bp
    from mirror.moved import bp as moved_bp
    from mirror.reader import bp as reader_bp
    from mirror.routes import bp as mirror_bp
    from provenance.routes import bp as log_bp
    from samizdat.openapi import bp as openapi_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(accounts_manage_bp)
    app.register_blueprint(browse_bp)
    app.register_blueprint(manage_bp)
    app.register_blueprint(moved_bp)
    app.register_blueprint(mirror_bp)
    app.register_blueprint(reader_bp)
    app.register_blueprint(reading_bp)
    app.register_blueprint(replay_bp)
    app.register_blueprint(timeline_bp)
    app.register_blueprint(embed_bp)
    app.register_blueprint(embed_public_bp)
    app.register_blueprint(embed_builder_bp)
    app.register_blueprint(fragments_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(wacz_bp)
    app.register_blueprint(memento_bp)
    app.register_blueprint(static_copy_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(log_bp)
    if settings.witnessed_logs_path is not None:
        from witness.routes import WITNESS_KEY
        from witness.routes import bp as witness_bp
        from witness.service import build_witness

        # Only a server that witnesses other logs answers /witness/…: elsewhere it is a 404.
        app.extensions[WITNESS_KEY] = build_witness(settings)
        app.register_blueprint(witness_bp)

    from ops.routes import init_ops

    # /healthz, /readyz, /metrics; request counters and the request id on log lines.
    metrics = init_ops(app, settings)

    from accounts.ratelimit import limit_api, limit_login

    # After the size check above, so an oversized login is never parsed for its account name.
    limit_login(app, settings)
    # Per API token and per client on the public JSON API and search; never the random fragment.
    limit_api(app, settings)

    # Unexpected exceptions arrive here too, as a generic InternalServerError (500).
    app.errorhandler(HTTPException)(error_response)
    # A database that is restarting or unreachable is a 503 with Retry-After, never a 500.
    app.register_error_handler(DBAPIError, database_unavailable)
    app.register_error_handler(PoolTimeoutError, database_unavailable)

    @app.after_request
    def no_tracking(response):
        # Readers and supporters leave no trace: nothing here sets cookies on public pages.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    from archive.tasks import periodic_tasks as archive_tasks
    from embed.tasks import periodic_tasks as embed_tasks
    from mirror.rebuild import periodic_tasks as index_tasks
    from provenance.tasks import periodic_tasks as log_tasks

    # The scheduler process (`flask scheduler`) runs these beside mirror's own jobs.
    app.extensions[TASKS_KEY] = [*index_tasks(), *log_tasks(settings), *embed_tasks(settings),
                                 *archive_tasks(settings, app)]

    from embed.fastpath import RandomFragmentFastPath

    # The random fragment is fetched on every page view of supporters' sites: its ordinary case
    # is answered before Flask builds a request (the view still answers everything else).
    app.wsgi_app = RandomFragmentFastPath(app, app.wsgi_app, on_served=metrics.count_fast_random)

    from samizdat.cli import register_cli

    register_cli(app)
    # The CLI and `flask run` log like gunicorn and the scheduler (a no-op where logging is set up).
    configure_logging(settings.log_format)
    logging.getLogger("samizdat").setLevel(logging.INFO)
    return app
