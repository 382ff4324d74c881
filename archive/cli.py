"""`flask archive …`: the reader archive's operator commands."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from archive.index import BATCH_SIZE, count_indexable, reindex
from samizdat.web import runtime


@click.group("archive")
def archive_cli():
    """The reader archive: search index, exports."""


@archive_cli.command("reindex")
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=BATCH_SIZE, show_default=True,
    help="Sources read and committed together.",
)
@with_appcontext
def archive_reindex(batch_size: int):
    """Rebuild the search index from every source's latest successful capture (idempotent)."""
    rt = runtime()
    total = count_indexable(rt)
    with click.progressbar(length=total, label="indexing", file=sys.stderr) as bar:
        report = reindex(rt, batch_size=batch_size, progress=bar.update)
    click.echo(f"{report.indexed} source(s) indexed, {report.failed} failed")
    if report.failed:
        raise SystemExit(1)
