"""Flask CLI wiring: one command group per capability, plus `db` and `doctor`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import click
from flask import Flask
from flask.cli import with_appcontext

from samizdat import migrate
from samizdat.text import unstorable_reason
from samizdat.web import runtime


@click.group("db")
def db_cli():
    """Database schema migrations (Alembic)."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str):
    """Bring the database to REVISION (the latest by default)."""
    url = runtime().settings.sqlalchemy_url
    migrate.upgrade(url, revision)
    click.echo(f"database at {migrate.current_revision(url)}")


@db_cli.command("current")
@with_appcontext
def db_current():
    """Print the database's schema revision."""
    click.echo(migrate.current_revision(runtime().settings.sqlalchemy_url) or "none")


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def doctor(as_json: bool):
    """Check the database, stores, Redis, scheduler, queues, packs, Chromium and metrics; exit 1 if any fails."""
    from ops.doctor import doctor_report, run_doctor

    checks = run_doctor(runtime())
    report = doctor_report(checks)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            state = "FAILING" if check.state == "failing" else check.state
            click.echo(f"{check.name:{width}}  {state:7}  {check.detail}")
    raise SystemExit(1 if report["failing"] else 0)


def register_cli(app: Flask) -> None:
    """Attach every command group to ``app.cli``."""
    from accounts.cli import audit_cli, users_cli
    from archive.cli import archive_cli
    from embed.cli import embed_cli
    from fragments.cli import collections_cli, fragments_cli
    from mirror.cli import mirror_cli, scheduler_cmd, sources_cli, worker_cmd
    from provenance.cli import log_cli, verify_cmd
    from provenance.keys_cli import keys_cli
    from witness.cli import witness_cli

    for command in (
        db_cli, doctor, users_cli, sources_cli, mirror_cli, scheduler_cmd, worker_cmd, fragments_cli,
        collections_cli, embed_cli, archive_cli, audit_cli, verify_cmd, log_cli, witness_cli,
        keys_cli,
    ):
        _check_text_arguments(command)
        app.cli.add_command(command)


def _check_text_arguments(command: click.Command) -> None:
    """Make ``command`` (and every subcommand) refuse unstorable text arguments in one line.

    An argument that is not valid UTF-8 reaches Python as lone surrogates (surrogateescape),
    which no database can store; refusing them here covers every command, present and future.
    Only plain text parameters are checked: a click.Path may name any file the system can open.
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _check_text_arguments(sub)
    callback = command.callback
    # The commands are module-level objects and create_app may run many times: wrap once.
    if callback is None or getattr(callback, "checks_text_arguments", False):
        return
    text_params = {
        param.name: param.opts[-1] if isinstance(param, click.Option) else param.name.upper()
        for param in command.params
        if type(param.type) is click.types.StringParamType
    }
    command.callback = _refusing_unstorable(callback, text_params)


def _refusing_unstorable(callback: Callable, text_params: dict[str, str]) -> Callable:
    """``callback``, after a check of the text arguments named in ``text_params`` (name → label)."""

    @functools.wraps(callback)
    def checked(*args, **kwargs):
        for name, label in text_params.items():
            value = kwargs.get(name)
            for item in value if isinstance(value, (list, tuple)) else (value,):
                reason = isinstance(item, str) and unstorable_reason(item)
                if reason:
                    raise click.ClickException(f"{label} {reason}")
        return callback(*args, **kwargs)

    checked.checks_text_arguments = True  # type: ignore[attr-defined]
    return checked
