"""`flask users …`: the local operator manages archivist accounts and their API tokens."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from accounts.audit import AuditFilter, audit_filter, cli_actor, entry_as_dict, list_entries, record
from accounts.models import ApiToken, User
from accounts.users import (
    AccountError,
    check_new_user,
    create_user,
    find_user,
    issue_token,
    revoke_token,
    set_active,
    set_password,
)
from samizdat.web import runtime


def _read_password(from_stdin: bool) -> str:
    """The new password: one line from stdin for scripts, else asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, default="", show_default=False
    )


@click.group("users")
def users_cli():
    """Manage archivist and admin accounts."""


@users_cli.command("create")
@click.argument("name")
@click.option("--role", default="archivist", show_default=True, help="archivist or admin.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def users_create(name: str, role: str, password_stdin: bool):
    """Create user NAME; the password is prompted for (twice, hidden)."""
    with runtime().Session() as session:
        try:
            check_new_user(session, name, role)
            user = create_user(session, name, role, _read_password(password_stdin))
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        record(session, cli_actor(), "user.add", "user", user.id, {"name": user.name, "role": role})
        session.commit()
        click.echo(f"created {user.role} {user.name} (id {user.id})")


@users_cli.command("password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def users_password(name: str, password_stdin: bool):
    """Set NAME's password (prompted twice, hidden); every session of NAME ends."""
    with runtime().Session() as session:
        try:
            find_user(session, name)
            user = set_password(session, name, _read_password(password_stdin))
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        record(session, cli_actor(), "user.password-reset", "user", user.id, {"name": name})
        session.commit()
    click.echo(f"password of {name} changed; their sessions are ended")


@users_cli.command("list")
@with_appcontext
def users_list():
    """List users with their role, state and number of live tokens."""
    with runtime().Session() as session:
        live_tokens = dict(
            session.execute(
                select(ApiToken.user_id, func.count())
                .where(ApiToken.revoked_at.is_(None))
                .group_by(ApiToken.user_id)
            ).all()
        )
        for user in session.scalars(select(User).order_by(User.id)):
            state = "active" if user.active else "disabled"
            click.echo(
                f"{user.id:>4}  {user.name:20}  {user.role:9}  {state:8}  "
                f"{live_tokens.get(user.id, 0)} tokens"
            )


@users_cli.command("token")
@click.argument("name")
@click.option("--label", help="What the token is for, e.g. import-script.")
@with_appcontext
def users_token(name: str, label: str | None):
    """Issue an API token for NAME and print it (the only time it is shown)."""
    with runtime().Session() as session:
        try:
            issued = issue_token(session, find_user(session, name), label)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        token = issued.token
        record(session, cli_actor(), "token.issue", "token", token.id,
               {"user": name, "label": token.label, "prefix": token.prefix})
        session.commit()
        # The token alone on stdout so scripts can capture it; the note goes to stderr.
        click.echo(issued.plain)
        click.echo(
            f"token {issued.token.id} for {name}: store it now, it is not shown again", err=True
        )


@users_cli.command("revoke-token")
@click.argument("token_id", type=int)
@with_appcontext
def users_revoke_token(token_id: int):
    """Revoke API token TOKEN_ID (see `flask users tokens`)."""
    with runtime().Session() as session:
        try:
            was_live = (session.get(ApiToken, token_id) or ApiToken()).revoked_at is None
            token = revoke_token(session, token_id)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        if was_live:
            record(session, cli_actor(), "token.revoke", "token", token.id,
                   {"user": token.user.name, "prefix": token.prefix})
        session.commit()
        click.echo(f"revoked token {token.id} ({token.prefix}…) of {token.user.name}")


@users_cli.command("tokens")
@click.argument("name")
@with_appcontext
def users_tokens(name: str):
    """List NAME's API tokens (prefixes only; the tokens themselves are not stored)."""
    with runtime().Session() as session:
        try:
            user = find_user(session, name)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        for token in user.tokens:
            state = "revoked" if token.revoked_at else "live"
            used = token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "never"
            click.echo(
                f"{token.id:>4}  {token.prefix}…  {state:7}  used {used:16}  {token.label or ''}"
            )


def _set_active(name: str, active: bool) -> None:
    with runtime().Session() as session:
        try:
            user = find_user(session, name)
            was_active = user.active
            set_active(session, name, active)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        if was_active != active:
            record(session, cli_actor(), "user.enable" if active else "user.disable", "user",
                   user.id, {"name": name})
        session.commit()
    click.echo(f"{'enabled' if active else 'disabled'} {name}")


@users_cli.command("disable")
@click.argument("name")
@with_appcontext
def users_disable(name: str):
    """Disable NAME: their sessions and tokens stop working at once."""
    _set_active(name, False)


@users_cli.command("enable")
@click.argument("name")
@with_appcontext
def users_enable(name: str):
    """Enable NAME again (their unrevoked tokens work again too)."""
    _set_active(name, True)


@click.group("audit")
def audit_cli():
    """Read the audit log of archivist and admin actions."""


@audit_cli.command("list")
@click.option("--actor", default=None, help="Only this actor (a user name, or cli:<os user>).")
@click.option("--action", default=None, help="Only this action (source.edit) or kind (source).")
@click.option("--target-kind", default=None, help="Only targets of this kind (source, user…).")
@click.option("--target-id", default=None, help="Only this target id.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_appcontext
def audit_list(actor, action, target_kind, target_id, limit: int, as_json: bool):
    """The newest audit entries first."""
    try:
        flt: AuditFilter = audit_filter(actor, action, target_kind, target_id)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    with runtime().Session() as session:
        _, entries = list_entries(session, flt, 0, limit)
        for entry in entries:
            item = entry_as_dict(entry)
            if as_json:
                click.echo(json.dumps(item, ensure_ascii=False))
                continue
            target = f"{item['target']['kind']} {item['target']['id'] or ''}".strip()
            click.echo(
                f"{item['at'][:19]}  {entry.actor_name:20}  {entry.action:22}  {target:14}  "
                f"{entry.detail or ''}"
            )
