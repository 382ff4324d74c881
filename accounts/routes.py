"""Login and logout pages, user management for admins, and API-token self-service."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from accounts.auth import (
    AuthFailure,
    audit,
    check_csrf,
    csrf_token,
    current_user,
    log_in,
    log_out,
    require_admin,
    require_archivist,
    safe_next,
    secure_page,
)
from accounts.audit import record_login
from accounts.models import ApiToken, User
from accounts.users import (
    AccountError,
    authenticate_password,
    create_user,
    issue_token,
    revoke_token,
)
from samizdat.web import db_session, json_error, json_object

bp = Blueprint("accounts", __name__, template_folder="templates")

# Where a login lands when it was not sent from a particular page.
DEFAULT_LANDING = "/manage/sources"


def user_as_dict(user: User) -> dict:
    """The JSON shape of a user (never the password hash)."""
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
    }


def token_as_dict(token: ApiToken) -> dict:
    """The JSON shape of an API token (never its hash, and the plain token only when issued)."""
    return {
        "id": token.id,
        "user": token.user.name,
        "label": token.label,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def _text_field(body: dict, name: str, default: str | None = None) -> str | None:
    """``body[name]`` when it is a string (``default`` when absent or null); AccountError if not."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise AccountError(f"{name} must be a string")
    return value


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; the right name and password start a session and return to ``next``."""
    next_url = safe_next(request.values.get("next"), DEFAULT_LANDING)
    if request.method == "GET":
        return secure_page(render_template("accounts/login.html", next_url=next_url, error=None))
    try:
        check_csrf()
    except AuthFailure as failure:
        page = render_template("accounts/login.html", next_url=next_url, error=failure.message)
        return secure_page(page, 400)
    name = request.form.get("name", "")
    user = authenticate_password(db_session(), name, request.form.get("password", ""))
    # Who was aimed at, for the audit log (authenticate_password answers None either way).
    target = user or db_session().scalar(select(User).where(User.name == name.strip()))
    record_login(db_session(), name, target, user is not None, current_app.secret_key.encode())
    db_session().commit()
    if user is None:
        page = render_template(
            "accounts/login.html",
            next_url=next_url,
            error="Wrong name or password.",
            name=request.form.get("name", ""),
        )
        return secure_page(page, 401)
    log_in(user)
    return redirect(next_url, 303)


@bp.post("/logout")
def logout():
    """End the session (CSRF-checked, so another site cannot log an archivist out)."""
    try:
        check_csrf()
    except AuthFailure as failure:
        return secure_page(render_template("accounts/forbidden.html", message=failure.message), 403)
    log_out()
    return redirect(url_for("accounts.login"), 303)


@bp.get("/api/users")
@require_admin
def list_users():
    """Every user (admins only)."""
    users = db_session().scalars(select(User).order_by(User.id))
    return jsonify({"items": [user_as_dict(u) for u in users]})


@bp.post("/api/users")
@require_admin
def add_user():
    """Create a user from JSON {name, role, password} (admins only)."""
    session = db_session()
    try:
        body = json_object()
        user = create_user(
            session,
            _text_field(body, "name", ""),
            _text_field(body, "role", "archivist"),
            _text_field(body, "password", ""),
        )
    except AccountError as exc:
        return json_error(400, str(exc))
    audit("user.add", "user", user.id, {"name": user.name, "role": user.role})
    session.commit()
    return jsonify(user_as_dict(user)), 201


@bp.get("/api/tokens")
@require_archivist
def list_tokens():
    """The caller's own API tokens (prefixes only)."""
    tokens = db_session().scalars(
        select(ApiToken).where(ApiToken.user_id == current_user().id).order_by(ApiToken.id)
    )
    return jsonify({"items": [token_as_dict(t) for t in tokens]})


@bp.post("/api/tokens")
@require_archivist
def add_token():
    """Issue the caller a new API token from JSON {label?}; the token is in this response only."""
    session = db_session()
    # The body is optional; one that is sent must be a JSON object like any other.
    body = json_object() if request.get_data(cache=True) else {}
    try:
        issued = issue_token(session, current_user(), _text_field(body, "label"))
    except AccountError as exc:
        return json_error(400, str(exc))
    token = issued.token
    audit("token.issue", "token", token.id, {"user": current_user().name, "label": token.label,
                                              "prefix": token.prefix})
    session.commit()
    response = jsonify({**token_as_dict(issued.token), "token": issued.plain})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/api/tokens/<int:token_id>")
@require_archivist
def delete_token(token_id: int):
    """Revoke one of the caller's tokens (an admin may revoke anyone's)."""
    session = db_session()
    user = current_user()
    try:
        was_live = (session.get(ApiToken, token_id) or ApiToken()).revoked_at is None
        token = revoke_token(session, token_id, owner=None if user.role == "admin" else user)
    except AccountError as exc:
        return json_error(404, str(exc))
    if was_live:
        audit("token.revoke", "token", token.id, {"user": token.user.name, "prefix": token.prefix})
    session.commit()
    return jsonify(token_as_dict(token))


# Every form on an archivist page carries the session's CSRF token.
bp.add_app_template_global(csrf_token, "csrf_token")
