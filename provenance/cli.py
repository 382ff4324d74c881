"""`flask verify` (the standalone verifier, also offered by the app's command line) and
`flask log` (the server's own log)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from provenance.appender import append_captures, log_signer, witness_checkpoint
from provenance.errors import ProvenanceError
from provenance.publish import publish_log
from provenance.verify import main
from samizdat.errors import SamizdatError
from samizdat.web import runtime


@click.command("verify", context_settings={"ignore_unknown_options": True,
                                           "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def verify_cmd(args: tuple[str, ...]) -> None:
    """Check a capture folder, WARC, WACZ or --fragment against the log; exit 1 if any check
    fails (`flask verify --help` for the options)."""
    # Needs no app context: what it checks comes from the download and the published log alone.
    # One parser (provenance.verify's) for both commands, so an option is added in one place.
    raise SystemExit(main(list(args), prog="flask verify", echo=click.echo))


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
    for path in report.stamps.written:
        click.echo(f"time-stamp token published: {path}")
    for failure in report.stamps.failures:
        click.echo(f"no time-stamp from {failure.tsa_url}: {failure.reason} (asked again next pass)")
    try:
        witnessed = witness_checkpoint(rt)
    except ProvenanceError as exc:
        raise click.ClickException(f"checkpoint not witnessed: {exc}") from None
    for name in witnessed.cosigned:
        click.echo(f"cosigned by {name}")
    for name, reason in witnessed.failures.items():
        click.echo(f"no cosignature from {name}: {reason}")
    if witnessed.quorum and not witnessed.quorum_met:
        click.echo(f"below the witness quorum: {len(witnessed.cosigned)} of {witnessed.quorum}")


@log_cli.command("publish")
@with_appcontext
def log_publish() -> None:
    """Send S3 and IPFS what they lack of the log directory (the checkpoint last), now."""
    rt = runtime()
    try:
        report = publish_log(rt.settings)
    except (ProvenanceError, SamizdatError) as exc:
        raise click.ClickException(str(exc)) from None
    if not report.sites:
        click.echo("no S3 bucket or IPFS node configured: the log is served by the app only")
        return
    if report.size is None:
        click.echo("the log has no checkpoint yet (`flask log append` signs one): nothing to publish")
    for site in report.sites:
        click.echo(f"{site.site}: {site.uploaded} file(s) sent ({site.bytes} bytes), "
                   f"{site.skipped} already there")
    if report.root_cid:
        click.echo(f"ipfs: /ipfs/{report.root_cid}/log/")
    for refused in report.refused:
        click.echo(f"not published: {refused}", err=True)
    for failure in report.failures:
        click.echo(f"failed: {failure} (retried by the next publish)", err=True)
    if report.failures:
        raise SystemExit(1)
