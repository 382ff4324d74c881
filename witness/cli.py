"""``flask witness``: this server as a witness of other logs (docs/provenance.md, "Witnesses")."""

from __future__ import annotations

from datetime import datetime, timezone

import click
from flask.cli import with_appcontext

from samizdat.errors import SamizdatError
from samizdat.web import runtime
from witness.logs import WitnessConfigError, WitnessedLogs, add_log, revoke_log_key
from witness.service import state_directory, witness_signer
from witness.state import WitnessState, WitnessStateError


@click.group("witness")
def witness_cli() -> None:
    """Witness other logs: check each new checkpoint's consistency and cosign it."""


@witness_cli.command("key")
@with_appcontext
def witness_key() -> None:
    """Print this witness's verifier key (made on first use), for the logs' SAMIZDAT_WITNESSES."""
    try:
        click.echo(witness_signer(runtime().settings).verifier.vkey)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None


@witness_cli.command("add-log")
@click.argument("origin")
@click.argument("vkey")
@with_appcontext
def witness_add_log(origin: str, vkey: str) -> None:
    """Witness the log ORIGIN whose checkpoints VKEY signs (added to SAMIZDAT_WITNESSED_LOGS)."""
    path = runtime().settings.witnessed_logs_path
    if path is None:
        raise click.ClickException("set SAMIZDAT_WITNESSED_LOGS to the file listing the witnessed "
                                   "logs first")
    try:
        added = add_log(path, origin, vkey)
    except (WitnessConfigError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'now witnessing' if added else 'already witnessing'} {origin.strip()} "
               f"(key {vkey.split('+')[0]}); in effect at once, no restart needed")


@witness_cli.command("revoke-log-key")
@click.argument("origin")
@click.argument("vkey")
@click.option("--from-size", "from_size", type=click.IntRange(0, (1 << 63) - 1), required=True,
              help="Refuse checkpoints of this size or more signed by VKEY alone: the log's "
                   "revocation entry's index + 1.")
@with_appcontext
def witness_revoke_log_key(origin: str, vkey: str, from_size: int) -> None:
    """Stop cosigning checkpoints of ORIGIN signed only by VKEY from a size on (a revoked key)."""
    path = runtime().settings.witnessed_logs_path
    if path is None:
        raise click.ClickException("set SAMIZDAT_WITNESSED_LOGS to the file listing the witnessed "
                                   "logs first")
    try:
        added = revoke_log_key(path, origin, vkey, from_size)
    except (WitnessConfigError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'revoked' if added else 'already revoked'}: {origin.strip()} checkpoints of size "
               f"{from_size} or more signed only by {vkey.split('+')[0]}'s key are refused (403); "
               f"in effect at once")


@witness_cli.command("status")
@with_appcontext
def witness_status() -> None:
    """The witness's name and key, and each witnessed log with the last size it cosigned."""
    settings = runtime().settings
    path = settings.witnessed_logs_path
    if path is None:
        click.echo("not a witness: SAMIZDAT_WITNESSED_LOGS is not set")
        return
    witnessed = WitnessedLogs(path)
    try:
        logs = witnessed.current()
    except WitnessConfigError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    click.echo(f"witness {witness_signer(settings).verifier.vkey}")
    click.echo(f"submission URL {settings.public_url.rstrip('/')}/witness/add-checkpoint")
    state = WitnessState(state_directory(settings))
    if not logs:
        click.echo(f"no logs listed in {path}")
    for origin in sorted(logs):
        names = {k.vkey: f"{k.name}+{k.key_id:08x}" for k in logs[origin]}
        revoked = "".join(f"; key {names[vkey]} revoked from size {size}"
                          for vkey, size in sorted(witnessed.revoked_from(origin).items()))
        try:
            seen = state.read(origin)
        except WitnessStateError as exc:
            click.echo(f"{origin}  state unreadable: {exc}")
            continue
        if not seen.updated:
            click.echo(f"{origin}  nothing cosigned yet{revoked}")
            continue
        when = datetime.fromtimestamp(seen.updated, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        forks, unproven = state.refused(origin, "fork"), state.refused(origin, "unproven")
        kept = "".join(f"; {len(paths)} {what} kept in {paths[0].parent}" for what, paths in
                       (("FORK checkpoint(s)", forks), ("failed proof(s)", unproven)) if paths)
        click.echo(f"{origin}  cosigned size {seen.size} at {when}{kept}{revoked}")
