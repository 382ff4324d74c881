"""`flask keys`: the server's signing keys (log, pack, WACZ), their rotation and revocation."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from provenance.errors import ProvenanceError
from provenance.keyring import ROLES, list_keys, revoke, rotate
from samizdat.errors import SamizdatError
from samizdat.web import runtime

_ROLE = click.Choice(ROLES)


@click.group("keys")
def keys_cli() -> None:
    """The signing keys: roles, rotation, revocation (docs/security.md, "Keys")."""


@keys_cli.command("list")
@with_appcontext
def keys_list() -> None:
    """Every key file by role: current, waiting, retired, and which are revoked."""
    rt = runtime()
    try:
        with rt.Session() as session:
            keys = list_keys(rt.settings, session)
    except (ProvenanceError, SamizdatError) as exc:
        raise click.ClickException(str(exc)) from None
    for key in keys:
        revoked = f"  revoked from {key.revoked_at}" if key.revoked_at else ""
        click.echo(f"{key.role:5} {key.key_id:16} {key.state:8} {key.path}{revoked}")


@keys_cli.command("rotate")
@click.argument("role", type=_ROLE)
@with_appcontext
def keys_rotate(role: str) -> None:
    """Make a new ROLE key; queue the rotation, signed by the old and the new key, for the log."""
    rt = runtime()
    try:
        with rt.Session() as session:
            entry = rotate(rt.settings, session, role)
    except (ProvenanceError, SamizdatError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{role} key {entry.key_id} rotated to {entry.new_key_id}; the rotation is "
               "queued for the log's next pass")
    if role == "log":
        click.echo("the new key signs checkpoints once a checkpoint covering the rotation is "
                   "published (the next checkpoint is signed by both keys)")


@keys_cli.command("revoke")
@click.argument("role", type=_ROLE)
@click.argument("key_id")
@click.option("--at", "at", help="When the revocation takes effect, YYYY-MM-DDTHH:MM:SSZ "
              "(default: now); signatures made after it are refused.")
@with_appcontext
def keys_revoke(role: str, key_id: str, at: str | None) -> None:
    """Queue the revocation of ROLE key KEY_ID for the log."""
    rt = runtime()
    try:
        entry = revoke(rt.settings, role, key_id, at)
    except (ProvenanceError, SamizdatError) as exc:
        raise click.ClickException(str(exc)) from None
    by = "the key itself" if entry.signatures.old else "the log key (the key's file is not here)"
    click.echo(f"{role} key {key_id} revoked from {entry.time}, signed by {by}; queued for the "
               "log's next pass")
