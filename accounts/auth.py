"""Who is asking: a Bearer token or the login session; role checks, CSRF and page headers.

Public endpoints never call into this module, so readers and supporters get no cookie: Flask
only sets the session cookie when something writes to the session (login, CSRF token, flash).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Response, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.urls import iri_to_uri

from accounts.audit import Actor, actor_of, record
from accounts.models import AuditEntry, User
from accounts.users import has_role, revoke_sessions, token_for
from samizdat.text import unstorable_reason
from samizdat.web import db_session, json_error, runtime

F = TypeVar("F", bound=Callable)

SESSION_USER = "user_id"
SESSION_VERSION = "version"
SESSION_CSRF = "csrf"
# Unix times inside the signed cookie: when this login happened and when it was last used on an
# archivist page. The server checks both on every request (a copied cookie is as old as it says).
SESSION_LOGIN_AT = "login_at"
SESSION_SEEN_AT = "seen_at"
# Writing the cookie on every page would send a Set-Cookie with each response; once a minute is
# precise enough for an idle timeout counted in minutes.
_SEEN_RESOLUTION_SECONDS = 60
# app.extensions key of the per-token rate limit check (accounts/ratelimit.py installs it).
TOKEN_LIMIT_CHECK = "samizdat.token_limit"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Archivist pages load nothing from elsewhere and run no script at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The one exception: the fragment review page loads its keyboard shortcuts from our own static
# file. No inline script and no other origin, so injected text still cannot run.
CONTENT_SECURITY_POLICY_WITH_SCRIPT = CONTENT_SECURITY_POLICY + "; script-src 'self'"


class AuthFailure(Exception):
    """A request lacks credentials (401), has the wrong role (403) or fails CSRF (403)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def csrf_token() -> str:
    """This session's CSRF token, created on first use (templates call it for every form)."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def _from_another_site() -> bool:
    """Whether the browser says this request was sent by a page of another origin.

    A second wall behind the token (a leaked token, a sibling subdomain, which SameSite=Lax does
    not stop). ``Origin: null`` is not proof: under our ``Referrer-Policy: no-referrer`` browsers
    send it for this site's own forms, so only the token decides then.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return False
    try:
        sent_by = urlsplit(origin).netloc.lower()
    except ValueError:
        return True  # "http://[" and the like: no browser sends that for our own page
    public = urlsplit(runtime().settings.public_url).netloc.lower()
    return sent_by not in {request.host.lower(), public}


def check_csrf() -> None:
    """Raise AuthFailure(403) unless the form field or X-CSRF-Token header matches the session's
    and the browser does not say another site sent the request."""
    if _from_another_site():
        raise AuthFailure(403, "this form was sent from another site; refused")
    expected = session.get(SESSION_CSRF)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500).
    if not expected or not secrets.compare_digest(str(expected).encode(), sent.encode()):
        raise AuthFailure(403, "missing or wrong CSRF token; reload the page and try again")


def log_in(user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too, so none survives from before)."""
    session.clear()
    session.permanent = True
    session[SESSION_USER] = user.id
    # The cookie is only as good as this number: logout, a password change and disabling bump it.
    session[SESSION_VERSION] = user.session_version
    session[SESSION_LOGIN_AT] = session[SESSION_SEEN_AT] = int(time.time())
    csrf_token()


def session_expired() -> bool:
    """Whether this session is past its absolute lifetime or has been idle too long.

    Checked from the timestamps inside the signed cookie, not from the cookie's own expiry,
    which a copied cookie does not keep. A session without them predates these checks: expired.
    """
    settings = runtime().settings
    login_at, seen_at = session.get(SESSION_LOGIN_AT), session.get(SESSION_SEEN_AT)
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return True
    now = time.time()
    return (
        now - login_at > settings.session_lifetime_hours * 3600
        or now - seen_at > settings.session_idle_minutes * 60
    )


def _touch_session() -> None:
    """Note that the session was used now (at most once a minute, so the cookie rarely changes)."""
    now = int(time.time())
    if now - session.get(SESSION_SEEN_AT, 0) >= _SEEN_RESOLUTION_SECONDS:
        session[SESSION_SEEN_AT] = now


def log_out() -> None:
    """End the session everywhere: revoke every copy of the cookie, then forget it here."""
    user_id = session.get(SESSION_USER)
    if user_id is not None:
        user = db_session().get(User, user_id)
        if user is not None and user.session_version == session.get(SESSION_VERSION):
            # The cookie is signed, not stored: clearing it here leaves any copy valid unless
            # the version it carries stops matching.
            revoke_sessions(user)
            db_session().commit()
    session.clear()


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def authenticated_user(writes_session: bool = True) -> User | None:
    """The user behind this request (looked up once); AuthFailure(401) for a bad token.

    An Authorization header, when present, is the only credential considered: a script's broken
    token must fail loudly rather than fall back to a browser session. A token over its rate
    limit raises RateLimitExceeded (429). ``writes_session=False`` (public pages) never touches
    the cookie, not even to clear a stale one, so those pages send no Set-Cookie.
    """
    if "auth_user" in g:
        return g.auth_user
    user = None
    g.auth_via = None
    if "Authorization" in request.headers:
        token = _bearer_token()
        if not token:
            raise AuthFailure(401, "the Authorization header must be 'Bearer <token>'")
        api_token = token_for(db_session(), token)
        if api_token is None:
            raise AuthFailure(401, "invalid, revoked or disabled API token")
        g.auth_token_id = api_token.id
        check_limit = current_app.extensions.get(TOKEN_LIMIT_CHECK)
        if check_limit is not None:
            check_limit()  # before anything is written: a refused request leaves no trace
        db_session().commit()  # keep last_used_at
        user = api_token.user
        g.auth_via = "token"
    elif session.get(SESSION_USER) is not None:
        user = db_session().get(User, session[SESSION_USER])
        if (
            user is None
            or not user.active
            or user.session_version != session.get(SESSION_VERSION)
            or session_expired()
        ):
            # Deleted, disabled, logged out elsewhere, password changed or simply too old.
            if writes_session:
                session.clear()
            user = None
        else:
            g.auth_via = "session"
    g.auth_user = user
    return user


def viewer_is_archivist() -> bool:
    """Whether this request comes from an archivist, for public pages that show them more.

    Never answers or raises: bad credentials simply count as a reader's.
    """
    try:
        user = authenticated_user(writes_session=False)
    except AuthFailure:
        return False
    return user is not None and has_role(user, "archivist")


def current_user() -> User:
    """The authenticated user of a view wrapped by :func:`require_role`."""
    return g.auth_user


def _check(role: str) -> User:
    user = authenticated_user()
    if user is None:
        raise AuthFailure(401, "log in or send 'Authorization: Bearer <token>'")
    if not has_role(user, role):
        raise AuthFailure(403, f"this needs the {role} role")
    # Cookies ride along with cross-site requests; tokens do not, so only sessions need CSRF.
    if g.auth_via == "session" and request.method not in _SAFE_METHODS:
        check_csrf()
    if g.auth_via == "session":
        _touch_session()  # only here: public pages never write the cookie
    return user


def current_actor() -> Actor:
    """The audit log's actor for the authenticated user of this request."""
    return actor_of(current_user())


def audit(
    action: str, target_kind: str, target_id: object = None, detail: dict | None = None
) -> AuditEntry:
    """Record an action of this request's user in its database session (committed with it)."""
    return record(db_session(), current_actor(), action, target_kind, target_id, detail)


def require_role(role: str, page: bool = False) -> Callable[[F], F]:
    """Decorator: let the view run only for a user with ``role``.

    API views (``page=False``) answer 401/403 JSON; pages send a visitor without a session to
    the login page and answer a wrong role or a failed CSRF check with an HTML 403 page.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                _check(role)
            except AuthFailure as failure:
                if not page:
                    response = json_error(failure.status, failure.message)
                    if failure.status == 401:
                        response.headers["WWW-Authenticate"] = 'Bearer realm="samizdat"'
                    return response
                if failure.status == 401:
                    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
                return secure_page(
                    render_template("accounts/forbidden.html", message=failure.message),
                    failure.status,
                )
            return view(*args, **kwargs)

        # What the view needs, for the test that walks every write endpoint of the URL map.
        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


require_archivist = require_role("archivist")
require_admin = require_role("admin")
archivist_page = require_role("archivist", page=True)


def secure_page(body: str | Response, status: int = 200, scripts: bool = False) -> Response:
    """An HTML response with the strict Content-Security-Policy and no caching of private pages.

    ``scripts=True`` lets the page load script files from this site (and nothing else).
    """
    response = (
        body if isinstance(body, Response) else Response(body, status=status, mimetype="text/html")
    )
    response.headers["Content-Security-Policy"] = (
        CONTENT_SECURITY_POLICY_WITH_SCRIPT if scripts else CONTENT_SECURITY_POLICY
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect after login).

    It becomes a Location header, so control characters (CR/LF would inject headers; werkzeug
    refuses them with a 500) and text no browser could send are refused too.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default  # some browsers read /\evil.example as //evil.example
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in target) or unstorable_reason(target):
        return default
    try:
        parts = urlsplit(target)
    except ValueError:
        return default
    if parts.scheme or parts.netloc:
        return default
    # Header values are Latin-1 on the wire: send any other character percent-encoded.
    return iri_to_uri(target)
