"""`flask fragments …`: inspect the fragments split from captures."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

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
