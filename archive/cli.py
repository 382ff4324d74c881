"""`flask archive …`: the reader archive's commands (exports to take away, the static copy, the search index)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from accounts.audit import cli_actor, record
from archive.index import BATCH_SIZE, count_indexable, reindex
from archive.static_copy import publish_static
from archive.wacz import atomic_output, collection_selection, source_selection, write_wacz
from archive.wacz_signing import wacz_signer_for
from samizdat.errors import SamizdatError
from samizdat.web import database_id, runtime

archive_cli = AppGroup("archive", help="The reader archive: exports and copies readers can take away.")


@archive_cli.command("export-wacz")
@click.option(
    "--collection", metavar="NAME", help="Export every stored capture of this collection."
)
# Text, not click.INT: a bad value gets this command's one-line error, not click's usage block.
@click.option("--source", metavar="ID", help="Export every stored capture of this source id.")
# click.Path: a file name is whatever the system accepts, not text checked for the database.
@click.option(
    "-o", "--output", type=click.Path(), metavar="FILE",
    help="The .wacz file to write (replaced only once complete).",
)
def export_wacz_cmd(collection: str | None, source: str | None, output: str | None):
    """Write a WACZ (WARCs, CDXJ index, pages, datapackage) of a --source or a --collection."""
    if (collection is None) == (source is None):
        raise click.ClickException("give exactly one of --source ID or --collection NAME")
    if not output:
        raise click.ClickException("give the file to write with -o FILE")
    source_id = None if source is None else database_id(source)
    if source is not None and source_id is None:
        raise click.ClickException(f"--source must be a source id (a whole number), not {source!r}")
    rt = runtime()
    try:
        with rt.Session() as session:
            if source is not None:
                selection = source_selection(session, source_id)
            else:
                selection = collection_selection(session, collection)
        signer = wacz_signer_for(rt.settings)
        # The output is opened first: a path that cannot be written fails before any progress.
        with atomic_output(Path(output)) as fh, click.progressbar(
            length=len(selection.captures), label="exporting", file=sys.stderr
        ) as bar:
            summary = write_wacz(rt.stores["local"], selection, fh, bar.update, signer=signer,
                                 log_path=rt.settings.log_path)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {output}: {summary.captures} captures, {summary.bytes} bytes")


@archive_cli.command("publish")
@click.option("--full", is_flag=True, help="Write and upload every file again, not only what changed.")
def archive_publish(full: bool):
    """Export the reader archive as a static site (public dir, S3, IPFS) and print where it is."""
    try:
        report = publish_static(current_app, full=full)
    except SamizdatError as exc:
        raise click.ClickException(str(exc)) from None
    with runtime().Session() as session:
        record(session, cli_actor(), "archive.publish", "archive", report.root_cid, {
            "files": report.files, "written": report.written, "deleted": report.deleted,
            "full": full, "failures": list(report.failures),
        })
        session.commit()
    click.echo(
        f"exported {report.files} file(s), {report.bytes} bytes ({report.pages} page(s), search index "
        f"{report.search_index_bytes} bytes): {report.written} written, {report.unchanged} unchanged, "
        f"{report.deleted} deleted, {report.bytes_written} bytes written to {report.directory}"
    )
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


@archive_cli.command("reindex")
# Text, not click.IntRange: a bad value gets this command's one-line error, not click's usage block.
@click.option(
    "--batch-size", metavar="N", default=str(BATCH_SIZE), show_default=True,
    help="Sources read and committed together (1–10000).",
)
def reindex_cmd(batch_size: str):
    """Rebuild the search index from every source's latest successful capture (idempotent)."""
    digits = batch_size.isascii() and batch_size.isdigit() and len(batch_size) <= 5
    if not (digits and 1 <= int(batch_size) <= 10_000):
        raise click.ClickException(
            f"--batch-size must be a whole number from 1 to 10000, not {batch_size[:20]!r}"
        )
    rt = runtime()
    with click.progressbar(length=count_indexable(rt), label="indexing", file=sys.stderr) as bar:
        report = reindex(rt, batch_size=int(batch_size), progress=bar.update)
    click.echo(f"{report.indexed} source(s) indexed, {report.failed} failed")
    if report.failed:
        raise SystemExit(1)
