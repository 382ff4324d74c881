"""Account pages under /manage/: users and tokens (admins), one's own password, the audit log.

Server-rendered forms with the session's CSRF token, no script; every action is recorded in the
audit log in the same transaction and returns to the page it was posted from. ``GET /api/audit``
gives admins the same log as JSON.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from accounts.audit import TARGET_KINDS, AuditFilter, audit_filter, entry_as_dict, list_entries
from accounts.auth import (
    audit,
    current_user,
    log_in,
    require_admin,
    require_role,
    archivist_page,
    secure_page,
)
from accounts.models import ROLES, ApiToken, User
from accounts.users import (
    AccountError,
    change_own_password,
    create_user,
    get_user,
    issue_token,
    revoke_token,
    set_password,
    set_role,
    set_user_active,
)
from samizdat.web import db_session, json_error, page_args, page_number

bp = Blueprint("accounts_manage", __name__, template_folder="templates")

admin_page = require_role("admin", page=True)

AUDIT_PAGE_SIZE = 100


# --- Users and tokens (admins) ---


def _render_users(error: str | None = None, form: dict | None = None, status: int = 200):
    """The users page, optionally with an error and the values the admin typed."""
    session = db_session()
    users = list(session.scalars(select(User).order_by(User.id)))
    tokens: dict[int, list[ApiToken]] = {}
    for token in session.scalars(select(ApiToken).order_by(ApiToken.id)):
        tokens.setdefault(token.user_id, []).append(token)
    body = render_template(
        "accounts/users.html",
        users=users,
        tokens=tokens,
        roles=ROLES,
        error=error,
        form=form or {},
        me=current_user(),
    )
    return secure_page(body, status)


def _back():
    """Back to the users page after an action (its result in a flashed notice)."""
    return redirect(url_for("accounts_manage.users_page"), 303)


def _refused(message: str, status: int = 400, form: dict | None = None):
    """Undo the request's changes and show the users page with why nothing happened."""
    db_session().rollback()
    return _render_users(error=message, form=form, status=status)


def _target(user_id: int) -> User | None:
    """The user a form acts on, or None when there is no such user."""
    try:
        return get_user(db_session(), user_id)
    except AccountError:
        return None


@bp.get("/manage/users")
@admin_page
def users_page():
    """Every user with role, state and tokens; forms to add, change and issue."""
    return _render_users()


@bp.post("/manage/users")
@admin_page
def add_user_form():
    """Create a user from the form (name, role, password)."""
    session = db_session()
    form = {"name": request.form.get("name", "").strip(), "role": request.form.get("role", "")}
    try:
        user = create_user(session, form["name"], form["role"], request.form.get("password", ""))
        audit("user.add", "user", user.id, {"name": user.name, "role": user.role})
    except AccountError as exc:
        return _refused(str(exc), form=form)
    session.commit()
    flash(f"Added {user.role} {user.name}.", "ok")
    return _back()


def _set_active(user_id: int, active: bool):
    session = db_session()
    user = _target(user_id)
    if user is None:
        return _refused(f"no user with id {user_id}", 404)
    if user.active == active:
        flash(f"{user.name} was already {'enabled' if active else 'disabled'}.", "ok")
        return _back()
    try:
        set_user_active(session, user, active)
        audit("user.enable" if active else "user.disable", "user", user.id, {"name": user.name})
    except AccountError as exc:
        return _refused(str(exc))
    session.commit()
    if user.id == current_user().id and not active:
        return redirect(url_for("accounts.login"), 303)
    flash(f"{'Enabled' if active else 'Disabled'} {user.name}.", "ok")
    return _back()


@bp.post("/manage/users/<int:user_id>/disable")
@admin_page
def disable_user_form(user_id: int):
    """Disable a user: their sessions and tokens stop working at once."""
    return _set_active(user_id, False)


@bp.post("/manage/users/<int:user_id>/enable")
@admin_page
def enable_user_form(user_id: int):
    """Enable a user again (their unrevoked tokens work again; old sessions do not)."""
    return _set_active(user_id, True)


@bp.post("/manage/users/<int:user_id>/role")
@admin_page
def role_form(user_id: int):
    """Make a user an archivist or an admin."""
    session = db_session()
    user = _target(user_id)
    if user is None:
        return _refused(f"no user with id {user_id}", 404)
    old, new = user.role, request.form.get("role", "")
    try:
        set_role(session, user, new)
        if new != old:
            audit("user.role", "user", user.id, {"name": user.name, "role": [old, new]})
    except AccountError as exc:
        return _refused(f"{user.name}: {exc}")
    session.commit()
    flash(f"{user.name} is {'now' if new != old else 'already'} {user.role}.", "ok")
    return _back()


@bp.post("/manage/users/<int:user_id>/password")
@admin_page
def reset_password_form(user_id: int):
    """Give a user a new password (an admin's reset): every session of theirs ends."""
    session = db_session()
    user = _target(user_id)
    if user is None:
        return _refused(f"no user with id {user_id}", 404)
    try:
        set_password(session, user.name, request.form.get("password", ""))
        audit("user.password-reset", "user", user.id, {"name": user.name})
    except AccountError as exc:
        return _refused(f"{user.name}: {exc}")
    session.commit()
    if user.id == current_user().id:
        log_in(user)  # this browser stays signed in under the new password
    flash(f"New password set for {user.name}; their sessions are ended.", "ok")
    return _back()


@bp.post("/manage/users/<int:user_id>/tokens")
@admin_page
def issue_token_form(user_id: int):
    """Issue a token for a user and show it on this response only (never again, never stored)."""
    session = db_session()
    user = _target(user_id)
    if user is None:
        return _refused(f"no user with id {user_id}", 404)
    try:
        return _issue_token_page(user, url_for("accounts_manage.users_page"), "Back to users")
    except AccountError as exc:
        return _refused(f"{user.name}: {exc}")


def _issue_token_page(user: User, back: str, back_label: str):
    """Issue ``user`` a token labelled from the form, audited, and show its secret on this
    no-store response only (never again, never stored); AccountError if refused."""
    session = db_session()
    issued = issue_token(session, user, request.form.get("label", ""))
    audit(
        "token.issue",
        "token",
        issued.token.id,
        {"user": user.name, "label": issued.token.label, "prefix": issued.token.prefix},
    )
    session.commit()
    body = render_template(
        "accounts/token_issued.html", user=user, issued=issued, back=back, back_label=back_label
    )
    return secure_page(body)


@bp.post("/manage/tokens/<int:token_id>/revoke")
@admin_page
def revoke_token_form(token_id: int):
    """Revoke any user's token."""
    session = db_session()
    token = session.get(ApiToken, token_id)
    if token is None:
        return _refused(f"no token with id {token_id}", 404)
    if token.revoked_at is not None:
        flash(f"Token {token.prefix}… was already revoked.", "ok")
        return _back()
    revoke_token(session, token_id)
    audit("token.revoke", "token", token.id, {"user": token.user.name, "prefix": token.prefix})
    session.commit()
    flash(f"Revoked token {token.prefix}… of {token.user.name}.", "ok")
    return _back()


# --- One's own account ---


def _render_account(error: str | None = None, status: int = 200):
    me = current_user()
    tokens = db_session().scalars(
        select(ApiToken).where(ApiToken.user_id == me.id).order_by(ApiToken.id)
    )
    body = render_template("accounts/account.html", me=me, tokens=list(tokens), error=error)
    return secure_page(body, status)


@bp.get("/manage/account")
@archivist_page
def account_page():
    """The signed-in archivist's own account: password change, their tokens, a new token."""
    return _render_account()


@bp.post("/manage/account/password")
@archivist_page
def change_password_form():
    """Change one's own password (the current one required); every other session ends."""
    session = db_session()
    me = current_user()
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        return _render_account(error="the two new passwords differ", status=400)
    try:
        change_own_password(session, me, request.form.get("current_password", ""), new)
        audit("user.password", "user", me.id, {"name": me.name})
    except AccountError as exc:
        session.rollback()
        return _render_account(error=str(exc), status=400)
    session.commit()
    # The change bumped the session version, ending every session; this one starts afresh.
    log_in(me)
    flash("Password changed; your other sessions are ended.", "ok")
    return redirect(url_for("accounts_manage.account_page"), 303)


@bp.post("/manage/account/tokens")
@archivist_page
def issue_own_token_form():
    """Issue oneself an API token (for scripts and imports), shown once."""
    try:
        return _issue_token_page(
            current_user(), url_for("accounts_manage.account_page"), "Back to your account"
        )
    except AccountError as exc:
        db_session().rollback()
        return _render_account(error=str(exc), status=400)


# --- The audit log (admins) ---


def _audit_filter(args) -> AuditFilter:
    return audit_filter(
        actor=args.get("actor"),
        action=args.get("action"),
        target_kind=args.get("target_kind"),
        target_id=args.get("target_id"),
    )


@bp.get("/manage/audit")
@admin_page
def audit_page():
    """The audit log, newest first, filtered by actor, action and target."""
    raw = {k: request.args.get(k, "").strip() for k in ("actor", "action", "target_kind", "target_id")}
    try:
        flt, error, status = _audit_filter(request.args), None, 200
    except AccountError as exc:
        flt, error, status = AuditFilter(), str(exc), 400
    page = page_number()
    total, entries = list_entries(
        db_session(), flt, (page - 1) * AUDIT_PAGE_SIZE, AUDIT_PAGE_SIZE
    )
    body = render_template(
        "accounts/audit.html",
        entries=[entry_as_dict(e) for e in entries],
        total=total,
        page=page,
        pages=max(1, -(-total // AUDIT_PAGE_SIZE)),
        flt=raw,
        filter_args={k: v for k, v in raw.items() if v},
        kinds=TARGET_KINDS,
        error=error,
    )
    return secure_page(body, status)


@bp.get("/api/audit")
@require_admin
def audit_api():
    """The audit log as JSON (admins only): ``?actor=&action=&target_kind=&target_id=&page=``."""
    try:
        page, per_page = page_args()
        flt = _audit_filter(request.args)
    except (ValueError, AccountError) as exc:
        return json_error(400, str(exc))
    total, entries = list_entries(db_session(), flt, (page - 1) * per_page, per_page)
    return jsonify(
        {
            "items": [entry_as_dict(e) for e in entries],
            "page": page,
            "per_page": per_page,
            "total": total,
        }
    )
