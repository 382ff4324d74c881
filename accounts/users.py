"""Accounts without Flask: creating users, checking passwords, issuing and checking API tokens.

Passwords are hashed with scrypt (Werkzeug's default, a slow memory-hard KDF). API tokens are
random, shown once, and stored only as their sha256: they already carry 256 bits of entropy, so
a fast hash is enough and lets every request look a token up by its digest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from accounts.models import ROLES, ApiToken, User
from samizdat.db import utcnow
from samizdat.errors import SamizdatError

MIN_PASSWORD_LENGTH = 10
# scrypt's cost grows with input length only a little, but nobody needs more than this.
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "smz_"
# How much of a token is kept in clear so its owner can recognise it in a list.
DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
# Writing last_used_at on every request would make every API call a write; once a minute is plenty.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccountError(SamizdatError):
    """A user or token request that cannot be carried out (duplicate name, weak password…)."""


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: the stored row and the plain token, which exists only in this object."""

    token: ApiToken
    plain: str


def has_role(user: User, role: str) -> bool:
    """Whether ``user`` may act as ``role``; an admin can do everything an archivist can."""
    if role == "archivist":
        return user.role in ("archivist", "admin")
    return user.role == role


def validate_password(password: str) -> None:
    """Refuse passwords that are too short (or absurdly long) with one clear message."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")


def check_new_user(session: Session, name: str, role: str) -> str:
    """The cleaned name if a user ``name`` with ``role`` could be created; AccountError if not.

    Lets the CLI refuse a bad name or role before asking for a password.
    """
    name = (name or "").strip()
    if not _NAME.match(name):
        raise AccountError(
            "name must be 1-100 letters, digits or . _ @ - (starting with a letter or digit)"
        )
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AccountError(f"a user named {name!r} already exists")
    return name


def create_user(session: Session, name: str, role: str, password: str) -> User:
    """Validate and store a new user; raises AccountError before anything is written.

    The caller commits.
    """
    name = check_new_user(session, name, role)
    validate_password(password)
    user = User(name=name, role=role, password_hash=generate_password_hash(password), active=True)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # Two creations raced past the check above; the unique constraint settles it.
        session.rollback()
        raise AccountError(f"a user named {name!r} already exists") from None
    return user


def find_user(session: Session, name: str) -> User:
    """The user called ``name``; AccountError when there is none."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"no user named {name!r}")
    return user


def authenticate_password(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (in the same time either way)."""
    user = session.scalar(select(User).where(User.name == (name or "").strip()))
    if user is None or len(password) > MAX_PASSWORD_LENGTH:
        check_password_hash(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def set_active(session: Session, name: str, active: bool) -> User:
    """Disable (or re-enable) a user: a disabled user's sessions and tokens stop working at once.

    The caller commits.
    """
    user = find_user(session, name)
    user.active = active
    if not active:
        # Re-enabling must not bring back cookies copied before the account was disabled.
        revoke_sessions(user)
    session.flush()
    return user


def revoke_sessions(user: User) -> None:
    """Make every session cookie issued to ``user`` so far worthless (the caller commits)."""
    user.session_version = (user.session_version or 0) + 1


def set_password(session: Session, name: str, password: str) -> User:
    """Give ``name`` a new password and end all their sessions; AccountError for a weak one.

    The caller commits.
    """
    validate_password(password)
    user = find_user(session, name)
    user.password_hash = generate_password_hash(password)
    revoke_sessions(user)
    session.flush()
    return user


@cache
def _dummy_hash() -> str:
    # Checked against when the user does not exist, so a wrong name costs as long as a wrong
    # password; made on first use rather than at import.
    return generate_password_hash(secrets.token_hex(16))


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, label: str | None = None) -> IssuedToken:
    """Create an API token for ``user``; the plain token is returned once and never stored.

    The caller commits.
    """
    label = (label or "").strip() or None
    if label is not None and len(label) > 100:
        raise AccountError("label must be at most 100 characters")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        label=label,
        prefix=plain[:DISPLAY_PREFIX_LENGTH],
        token_hash=_digest(plain),
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, plain)


def user_for_token(session: Session, plain: str) -> User | None:
    """The active user owning this unrevoked token, or None; records when it was last used.

    The caller commits (the request's session does, or the change is simply dropped).
    """
    token = token_for(session, plain)
    return None if token is None else token.user


def token_for(session: Session, plain: str) -> ApiToken | None:
    """The live token ``plain`` is (unrevoked, its user active), or None; records its use.

    The caller commits.
    """
    if not plain.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(plain)
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The lookup is by digest; comparing again in constant time costs nothing and rules out
    # any collation surprise in the database.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    if token.revoked_at is not None or not token.user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        token.last_used_at = now
    return token


def revoke_token(session: Session, token_id: int, owner: User | None = None) -> ApiToken:
    """Revoke a token (only among ``owner``'s when given); AccountError when there is no such token.

    Revoking twice is harmless. The caller commits.
    """
    token = session.get(ApiToken, token_id)
    if token is None or (owner is not None and token.user_id != owner.id):
        raise AccountError(f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.flush()
    return token


def get_user(session: Session, user_id: int) -> User:
    """The user with this id; AccountError when there is none."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(f"no user with id {user_id}")
    return user


def _check_admins_remain(session: Session, user: User) -> None:
    """AccountError if ``user`` is the last active admin: someone must still manage accounts."""
    others = session.scalar(
        select(func.count()).select_from(User).where(
            User.role == "admin", User.active.is_(True), User.id != user.id
        )
    )
    if user.role == "admin" and user.active and not others:
        raise AccountError(f"{user.name} is the last active admin; make another admin first")


def set_role(session: Session, user: User, role: object) -> User:
    """Give ``user`` another role (AccountError for an unknown one, or the last admin's demotion).

    The caller commits.
    """
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role != user.role:
        _check_admins_remain(session, user)
        user.role = role  # type: ignore[assignment]
        session.flush()
    return user


def set_user_active(session: Session, user: User, active: bool) -> User:
    """Disable or enable ``user`` (never the last active admin); see :func:`set_active`."""
    if not active:
        _check_admins_remain(session, user)
    return set_active(session, user.name, active)


def change_own_password(session: Session, user: User, current: str, new: str) -> User:
    """Set ``user``'s password to ``new`` if ``current`` is right; every session of theirs ends.

    AccountError for a wrong current password or a weak new one. The caller commits.
    """
    if len(current) > MAX_PASSWORD_LENGTH or not check_password_hash(user.password_hash, current):
        raise AccountError("the current password is wrong")
    if new == current:
        raise AccountError("the new password must differ from the current one")
    return set_password(session, user.name, new)
