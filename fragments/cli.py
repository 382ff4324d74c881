"""`flask fragments …`: inspect the fragments split from captures."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from fragments.extract import extract_main_text
from fragments.models import Fragment
from fragments.store import fragment_as_dict
from samizdat.web import runtime


@click.group("fragments")
def fragments_cli():
    """Inspect and curate fragments."""


@fragments_cli.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def fragments_list(status: str | None, limit: int, as_json: bool):
    """List fragments, newest capture first."""
    query = select(Fragment).order_by(Fragment.fetched_at.desc(), Fragment.position).limit(limit)
    if status:
        query = query.where(Fragment.status == status)
    with runtime().Session() as session:
        items = list(session.scalars(query))
        if as_json:
            click.echo(json.dumps([{**fragment_as_dict(f), "status": f.status} for f in items], indent=2))
            return
        for f in items:
            click.echo(f"{f.id}  {f.status:8}  {f.text}")


@fragments_cli.command("extract")
@click.argument("path")
@click.option("--url", default=None, help="The page's address (helps recognise the site's furniture).")
@click.option("--charset", default=None, help="The page's charset, when known (else sniffed).")
def fragments_extract(path: str, url: str | None, charset: str | None):
    """Print the main text extraction keeps from an HTML file (PATH, or - for stdin), a block a line.

    Needs no database: it reads the file and prints, nothing else.
    """
    try:
        if path == "-":
            html = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                html = handle.read()
    except OSError as error:
        # One line, no traceback: the reason the file could not be read.
        click.echo(f"error: cannot read {path}: {error.strerror or error}", err=True)
        sys.exit(1)
    for paragraph in extract_main_text(html, url=url, charset=charset).paragraphs:
        click.echo(paragraph)
