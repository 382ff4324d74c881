"""`flask verify` (the standalone verifier, also offered by the app's command line) and
`flask log` (the server's own log)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from provenance.appender import append_captures, log_signer
from provenance.errors import ProvenanceError
from provenance.verify import run
from samizdat.errors import SamizdatError
from samizdat.web import runtime


@click.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--log", "log", required=True, help="The log: a directory or an http(s) prefix.")
@click.option("--key", required=True, help="The log's verifier key, <name>+<id>+<key>.")
@click.option("--origin", help="The log's origin line (default: the key's name).")
def verify_cmd(folder: str, log: str, key: str, origin: str | None) -> None:
    """Check a capture FOLDER against the log: hashes, entry, inclusion; exit 1 if any fails."""
    # Needs no app context: what it checks comes from the folder and the published log alone.
    raise SystemExit(run(folder, log, key, origin, echo=click.echo))


@click.group("log")
def log_cli() -> None:
    """The public provenance log this server writes (docs/provenance.md)."""


@log_cli.command("append")
@with_appcontext
def log_append() -> None:
    """Append every stored capture and curation decision not yet logged and publish a new
    checkpoint, now."""
    # A server command, not an archivist's: it only writes what the archive already holds.
    rt = runtime()
    try:
        report = append_captures(rt)
    except (ProvenanceError, SamizdatError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{report.appended} capture(s) appended, {report.replayed} replayed, "
               f"{report.decisions} decision(s) appended; "
               f"log {rt.settings.log_origin_name} at size {report.size}")
    click.echo(f"verifier key: {log_signer(rt.settings).verifier.vkey}")
