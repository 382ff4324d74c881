"""Accounts without the web: password hashing, token storage, what makes a token stop working."""

import hashlib

import pytest
from sqlalchemy import select

from accounts.models import ApiToken, User
from accounts.users import (
    AccountError,
    authenticate_password,
    create_user,
    has_role,
    issue_token,
    revoke_token,
    set_active,
    user_for_token,
)
from samizdat.runtime import build_runtime
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def db(settings):
    rt = build_runtime(settings)
    with rt.Session() as session:
        yield session
    rt.dispose()


def test_password_is_stored_as_a_slow_scrypt_hash(db):
    user = create_user(db, "ana", "archivist", TEST_PASSWORD)
    db.commit()
    assert user.password_hash.startswith("scrypt:")
    assert TEST_PASSWORD not in user.password_hash
    assert authenticate_password(db, "ana", TEST_PASSWORD).id == user.id


def test_wrong_password_unknown_name_and_disabled_user_do_not_authenticate(db):
    create_user(db, "ana", "archivist", TEST_PASSWORD)
    db.commit()
    assert authenticate_password(db, "ana", "not the password") is None
    assert authenticate_password(db, "nobody", TEST_PASSWORD) is None
    set_active(db, "ana", False)
    db.commit()
    assert authenticate_password(db, "ana", TEST_PASSWORD) is None


@pytest.mark.parametrize(
    "name, role, password, message",
    [
        ("ana", "archivist", "short", "at least 10"),
        ("ana", "archivist", "", "at least 10"),
        ("ana", "root", TEST_PASSWORD, "role must be one of"),
        ("", "archivist", TEST_PASSWORD, "name must be"),
        ("with space", "archivist", TEST_PASSWORD, "name must be"),
    ],
)
def test_bad_users_are_refused_before_anything_is_written(db, name, role, password, message):
    with pytest.raises(AccountError, match=message):
        create_user(db, name, role, password)
    db.rollback()
    assert db.scalars(select(User)).all() == []


def test_duplicate_name_is_refused(db):
    create_user(db, "ana", "archivist", TEST_PASSWORD)
    db.commit()
    with pytest.raises(AccountError, match="already exists"):
        create_user(db, "ana", "admin", TEST_PASSWORD)


def test_token_is_stored_only_as_its_sha256(db):
    user = create_user(db, "ana", "archivist", TEST_PASSWORD)
    issued = issue_token(db, user, "script")
    db.commit()
    assert issued.plain.startswith("smz_") and len(issued.plain) > 40
    row = db.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(issued.plain.encode()).hexdigest()
    assert issued.plain.startswith(row.prefix) and len(row.prefix) < 16
    # No column of the row holds the plain token.
    assert all(issued.plain not in str(getattr(row, c.name)) for c in ApiToken.__table__.columns)
    assert user_for_token(db, issued.plain).id == user.id
    assert row.last_used_at is not None


def test_revoked_tokens_and_tokens_of_disabled_users_are_rejected(db):
    user = create_user(db, "ana", "archivist", TEST_PASSWORD)
    revoked = issue_token(db, user)
    kept = issue_token(db, user)
    db.commit()
    revoke_token(db, revoked.token.id)
    db.commit()
    assert user_for_token(db, revoked.plain) is None
    assert user_for_token(db, kept.plain) is not None
    set_active(db, "ana", False)
    db.commit()
    assert user_for_token(db, kept.plain) is None
    assert user_for_token(db, "smz_" + "x" * 43) is None
    assert user_for_token(db, "") is None


def test_only_the_owner_revokes_through_owner_scope(db):
    ana = create_user(db, "ana", "archivist", TEST_PASSWORD)
    bo = create_user(db, "bo", "archivist", TEST_PASSWORD)
    token = issue_token(db, ana).token
    db.commit()
    with pytest.raises(AccountError, match="no token"):
        revoke_token(db, token.id, owner=bo)


def test_admin_includes_archivist():
    assert has_role(User(role="admin"), "archivist")
    assert has_role(User(role="archivist"), "archivist")
    assert not has_role(User(role="archivist"), "admin")
