"""`flask archive …`: the reader archive's commands."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from archive.static_copy import publish_static
from samizdat.errors import SamizdatError

archive_cli = AppGroup("archive", help="The reader archive: exports and copies readers can take away.")


@archive_cli.command("publish")
@click.option("--full", is_flag=True, help="Write and upload every file again, not only what changed.")
def archive_publish(full: bool):
    """Export the reader archive as a static site (public dir, S3, IPFS) and print where it is."""
    try:
        report = publish_static(current_app, full=full)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"exported {report.files} file(s), {report.bytes} bytes ({report.pages} page(s), search index "
        f"{report.search_index_bytes} bytes): {report.written} written, {report.unchanged} unchanged, "
        f"{report.deleted} deleted, {report.bytes_written} bytes written to {report.directory}"
    )
    if report.missing:
        click.echo(f"skipped {len(report.missing)} page(s) not built yet, e.g. {report.missing[0]}")
    for site in report.sites:
        click.echo(f"{site.site}: {site.uploaded} file(s) uploaded ({site.bytes} bytes), "
                   f"{site.skipped} already there, {site.deleted} deleted")
        for note in site.notes:
            click.echo(f"{site.site}: note: {note}")
    if report.root_cid:
        click.echo(f"root CID {report.root_cid}")
    for name, url in report.urls.items():
        click.echo(f"{name}: {url}")
    if report.failures:
        raise click.ClickException("not published to " + "; ".join(report.failures))
