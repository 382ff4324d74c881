"""`flask users …`: the local operator creates accounts and tokens; bad input writes nothing."""

import pytest
from sqlalchemy import select

from accounts.models import ApiToken, User
from tests.conftest import TEST_PASSWORD, create_account


def users_in(app):
    with app.extensions["samizdat"].Session() as session:
        return {u.name: u for u in session.scalars(select(User))}


def one_error_line(result):
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_create_prompts_twice_and_stores_a_hash(app, cli):
    result = cli.invoke(
        args=["users", "create", "ana", "--role", "admin"],
        input=f"{TEST_PASSWORD}\n{TEST_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin ana" in result.output
    assert TEST_PASSWORD not in result.output  # the prompt does not echo
    user = users_in(app)["ana"]
    assert user.role == "admin" and user.password_hash.startswith("scrypt:")


def test_create_reads_the_password_from_stdin_for_scripts(app, cli):
    result = cli.invoke(
        args=["users", "create", "bot", "--password-stdin"], input=TEST_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert users_in(app)["bot"].role == "archivist"


@pytest.mark.parametrize(
    "args, password, message",
    [
        (["ana", "--role", "superuser"], TEST_PASSWORD, "role must be one of"),
        (["ana"], "short", "at least 10 characters"),
        (["ana"], "", "at least 10 characters"),
        (["bad name"], TEST_PASSWORD, "name must be"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(app, cli, args, password, message):
    result = cli.invoke(args=["users", "create", *args, "--password-stdin"], input=password + "\n")
    assert result.exit_code != 0
    assert message in one_error_line(result)
    assert users_in(app) == {}


def test_duplicate_name_is_refused_before_asking_a_password(app, cli):
    create_account(app, "ana")
    result = cli.invoke(args=["users", "create", "ana"], input="")
    assert result.exit_code != 0
    assert "already exists" in one_error_line(result)
    assert "Password" not in result.output


def test_token_is_printed_once_and_stored_hashed(app, cli):
    create_account(app, "ana")
    result = cli.invoke(args=["users", "token", "ana", "--label", "import"])
    assert result.exit_code == 0, result.output
    plain = result.stdout.strip()
    assert plain.startswith("smz_")
    with app.extensions["samizdat"].Session() as session:
        token = session.scalars(select(ApiToken)).one()
        assert token.label == "import" and token.token_hash != plain
    listing = cli.invoke(args=["users", "tokens", "ana"])
    assert token.prefix in listing.output and plain not in listing.output


def test_revoke_token_and_disable_user(app, cli):
    create_account(app, "ana")
    cli.invoke(args=["users", "token", "ana"])
    assert cli.invoke(args=["users", "revoke-token", "1"]).exit_code == 0
    missing = cli.invoke(args=["users", "revoke-token", "99"])
    assert missing.exit_code != 0 and "no token with id 99" in one_error_line(missing)
    assert cli.invoke(args=["users", "disable", "ana"]).exit_code == 0
    assert users_in(app)["ana"].active is False
    listing = cli.invoke(args=["users", "list"])
    assert "disabled" in listing.output and "0 tokens" in listing.output
    nobody = cli.invoke(args=["users", "disable", "nobody"])
    assert nobody.exit_code != 0 and "no user named" in one_error_line(nobody)
