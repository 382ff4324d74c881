"""`flask verify`: the standalone verifier, also offered by the app's command line."""

from __future__ import annotations

import click

from provenance.verify import run


@click.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--log", "log", required=True, help="The log: a directory or an http(s) prefix.")
@click.option("--key", required=True, help="The log's verifier key, <name>+<id>+<key>.")
@click.option("--origin", help="The log's origin line (default: the key's name).")
def verify_cmd(folder: str, log: str, key: str, origin: str | None) -> None:
    """Check a capture FOLDER against the log: hashes, entry, inclusion; exit 1 if any fails."""
    # Needs no app context: what it checks comes from the folder and the published log alone.
    raise SystemExit(run(folder, log, key, origin, echo=click.echo))
